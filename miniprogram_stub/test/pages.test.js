// Every page compiled by WeChat's WXML compiler (wcc) and rendered by miniprogram-simulate in
// jsdom, driven through real events (tap, input, change) against the real backend (migrated
// SQLite, fake WeChat API) started for this file. See test-support/miniprogram.js for the Page
// shim and how the `wx` double keeps WeChat's rules (subscribe only inside a tap, privacy
// consent before the photo picker).
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { after, before, describe, test } = require('node:test');

const { E_RESCUE, startBackend, createWx, writePhoto, idNumber, decodeCodes } = require('../test-support/backend.js');
const { LINK_PAGES } = require('../utils/launch.js');
const mp = require('../test-support/miniprogram.js');

const skip = !fs.existsSync(E_RESCUE) && `${E_RESCUE} missing (run make install)`;
const APP = require('../app.json');

describe('the pages against the real backend', { skip }, () => {
  let backend;
  let staff;
  let seed = 10;

  before(async () => {
    backend = await startBackend({ villages: [['chengdong', '西冶街社区', 'cd-001']] });
    backend.run(['create-staff', '--username', 'cd-staff', '--password', 'long-enough-pass-1',
      '--role', 'town_staff', '--town', 'chengdong']);
    staff = await staffApi();
  });

  after(async () => {
    if (backend) await backend.stop();
  });

  // A staff account made with `create-staff` chooses its own password at first login
  // (POST /api/v1/auth/staff-password logs in with the new one).
  async function staffApi(username = 'cd-staff') {
    const { createApi } = require('../utils/api.js');
    const wx = createWx({ user: 'staff-' + username });
    const anon = createApi({ wx, base: backend.base });
    const login = await anon.request('POST', '/api/v1/auth/staff-password',
      { username, password: 'long-enough-pass-1', new_password: 'Chosen-at-first-login-7' }, { relogin: false });
    wx.storage.set('e_rescue_token', login.token);
    return createApi({ wx, base: backend.base });
  }

  function person(user, options) {
    const wx = createWx(Object.assign({ user }, options));
    const app = mp.launchApp({ wx, base: backend.base });
    return { wx, app, open: (route, query) => mp.openPage(route, query, { wx, app }) };
  }

  async function ready(page) {
    await mp.until(() => page.data.status !== 'loading', { what: page.instance.route, page });
    assert.equal(page.data.status, 'ready', mp.text(page));
    return page;
  }

  // Pick a photo with the picker; the first time, WeChat's privacy popup is agreed to.
  async function addPhoto(page, who, selector = '.photo-add') {
    const before = page.data.photos.length;
    who.wx.nextChosenFiles.push(writePhoto(backend.tmp, { seed: (seed += 1) }));
    await mp.tap(page, selector);
    if (!who.wx.privacyAgreed) {
      await mp.until(() => page.data.privacyAsk, { what: 'the privacy popup', page });
      await mp.agreePrivacy(page, who.wx);
    }
    await mp.until(() => page.data.photos.length === before + 1, { what: 'the photo upload', page });
  }

  // An application filed through the API (for pages that show one).
  async function fileOne(api) {
    const photo = await api.uploadPhoto(writePhoto(backend.tmp, { seed: (seed += 1) }));
    const filed = await api.submitApplication({
      type: 'dibao',
      // A person of their own each time: a second open 低保 application of one person is refused.
      applicant: { name: '孙八', id_number: idNumber('3703041972070' + String(1000 + seed)), phone: '13512345678', town: 'chengdong', village: 'cd-001', address: '西冶街8号' },
      monthly_income: '500',
      reason: '生活困难。',
      photo_ids: [photo.id],
    });
    return filed.id;
  }

  async function fillApplicant(page, { name, id, phone }) {
    await mp.input(page, '.f-name', name);
    await mp.input(page, '.f-id', id);
    await mp.input(page, '.f-phone', phone);
    await mp.input(page, '.f-address', '城东街道西冶街1号');
    await mp.input(page, '.f-income', '600');
    await mp.input(page, '.f-reason', '家中老人长期患病，无固定收入。');
  }

  test('apply for each kind of aid with a photo; subscribe inside the tap; consent first', async () => {
    const who = person('ada');
    const kinds = [];
    for (const [index, type] of ['dibao', 'tekun', 'temporary', 'medical'].entries()) {
      const apply = await ready(who.open('pages/apply/apply', { village: 'cd-001', type }));
      assert.equal(apply.data.types[apply.data.form.typeIndex].value, type);
      assert.match(mp.text(apply), /西冶街社区/);
      await fillApplicant(apply, { name: '张' + index, id: idNumber('3703041980010' + (1000 + index)), phone: '1381234567' + index });
      if (type === 'temporary') {
        await mp.change(apply, '.f-happened-on', '2026-11-20');
        await mp.input(apply, '.f-what', '房屋失火，财物受损。');
      }
      if (type === 'medical') {
        await mp.input(apply, '.f-hospital', '博山区人民医院');
        await mp.change(apply, '.f-admission', '2026-10-01');
        await mp.change(apply, '.f-discharge', '2026-10-20');
        await mp.input(apply, '.f-total', '50000');
        await mp.input(apply, '.f-own', '30000');
      }
      await addPhoto(apply, who);
      // Without 我已阅读并同意 nothing is sent.
      const posts = () => who.wx.calls.filter((c) => c.method === 'POST' && /applications$/.test(c.url)).length;
      const sentBefore = posts();
      await mp.tap(apply, '.submit');
      assert.equal(who.wx.shown.filter((s) => s.kind === 'toast').pop().text, '请先阅读并同意隐私政策');
      assert.equal(posts(), sentBefore);
      await mp.change(apply, '.consent-box', ['agree']);
      const navigations = who.wx.shown.filter((s) => s.kind === 'navigate').length;
      await mp.tap(apply, '.submit');
      await mp.until(() => who.wx.shown.filter((s) => s.kind === 'navigate').length > navigations, { what: 'submitted ' + type, page: apply });
      kinds.push(Number(/detail\?id=(\d+)/.exec(who.wx.lastNavigation().url)[1]));
      apply.close();
    }
    assert.equal(who.wx.shown.filter((s) => s.kind === 'subscribe-refused').length, 0);
    assert.ok(who.wx.shown.filter((s) => s.kind === 'subscribe').length >= 4, 'every submit tap asked');
    const mine = await ready(who.open('pages/mine/mine'));
    assert.equal(mine.data.total, 4);
    assert.deepEqual(mine.data.items.map((i) => i.id).sort(), kinds.slice().sort());
  });

  test('the wx double refuses the subscribe request outside a tap, as WeChat does', async () => {
    const who = person('bea');
    const apply = await ready(who.open('pages/apply/apply', { village: 'cd-001' }));
    const answer = await who.app.api.requestSubscribe(['received']);
    assert.match(answer.error.message, /TAP gesture/);
    assert.equal(who.wx.shown.pop().kind, 'subscribe-refused');
    apply.close();
  });

  test('timeline, inbox (unread → read), withdraw, a refusal shows how to ask for 复核', async () => {
    const who = person('cai');
    const apply = await ready(who.open('pages/apply/apply', { village: 'cd-001' }));
    await fillApplicant(apply, { name: '王五', id: idNumber('37030419700202123'), phone: '13912345678' });
    await addPhoto(apply, who);
    await mp.change(apply, '.consent-box', ['agree']);
    await mp.tap(apply, '.submit');
    await mp.until(() => who.wx.lastNavigation(), { what: 'submitted', page: apply });
    const id = Number(/id=(\d+)/.exec(who.wx.lastNavigation().url)[1]);
    await staff.request('POST', `/api/v1/applications/${id}/accept`);

    const detail = await ready(who.open('pages/detail/detail', { id: String(id) }));
    assert.equal(detail.data.statusLabel, '已受理');
    assert.equal(detail.data.timeline.length, 2);
    assert.match(mp.text(detail), /补充材料/);

    const inbox = await ready(who.open('pages/messages/messages'));
    assert.ok(inbox.data.unread >= 2, JSON.stringify(inbox.data.items));
    const unread = inbox.data.unread;
    await mp.tap(inbox, '.message');
    await mp.until(() => inbox.data.unread === unread - 1, { what: 'marked read', page: inbox });
    assert.equal(inbox.data.items[0].unread, false);
    assert.match(who.wx.lastNavigation().url, new RegExp(`detail\\?id=${id}`));

    // Withdraw: the confirm modal's 撤回.
    await mp.tap(detail, '.withdraw');
    await mp.until(() => detail.data.application.status === 'withdrawn', { what: 'withdrawn', page: detail });
    assert.equal(detail.querySelector('.withdraw'), undefined, 'no 撤回 once withdrawn');

    // A refused application: how to ask for a review and whom to call.
    const refusedApply = await ready(who.open('pages/apply/apply', { village: 'cd-001' }));
    await fillApplicant(refusedApply, { name: '王五', id: idNumber('37030419700202123'), phone: '13912345678' });
    await addPhoto(refusedApply, who);
    await mp.change(refusedApply, '.consent-box', ['agree']);
    await mp.tap(refusedApply, '.submit');
    await mp.until(() => who.wx.lastNavigation().url.indexOf('id=' + id) < 0, { what: 'second application' });
    const refusedId = Number(/id=(\d+)/.exec(who.wx.lastNavigation().url)[1]);
    // 受理 → 调查核实 → 办结, one step at a time.
    await staff.request('POST', `/api/v1/applications/${refusedId}/accept`);
    await staff.request('POST', `/api/v1/applications/${refusedId}/investigate`);
    await staff.request('POST', `/api/v1/applications/${refusedId}/decide`, { outcome: 'not_eligible', reason: '家庭收入高于低保标准' });
    const refused = await ready(who.open('pages/detail/detail', { id: String(refusedId) }));
    assert.equal(refused.data.refused, true);
    assert.match(mp.text(refused), /复核/);
    await mp.tap(refused, '.review .call');
    assert.equal(who.wx.shown.pop().kind, 'call');
  });

  test('add papers to an open application', async (t) => {
    const who = person('dan');
    const apply = await ready(who.open('pages/apply/apply', { village: 'cd-001' }));
    await fillApplicant(apply, { name: '赵四', id: idNumber('37030419650505123'), phone: '13612345678' });
    await addPhoto(apply, who);
    await mp.change(apply, '.consent-box', ['agree']);
    await mp.tap(apply, '.submit');
    await mp.until(() => who.wx.lastNavigation(), { what: 'submitted' });
    const id = Number(/id=(\d+)/.exec(who.wx.lastNavigation().url)[1]);
    const papers = await ready(who.open('pages/papers/papers', { id: String(id) }));
    await addPhoto(papers, who);
    // A visible 删除 on each photo removes it without a long press.
    await addPhoto(papers, who);
    await mp.tap(papers, '.photo-remove');
    assert.equal(papers.data.photos.length, 1);
    await mp.tap(papers, '.send');
    await mp.until(() => !papers.data.sending && who.wx.shown.some((s) => /材料已补充|未找到|请求/.test(s.text || '')), { what: 'papers sent', page: papers });
    const answer = who.wx.shown.filter((s) => s.kind === 'toast' || s.kind === 'modal').pop();
    if (answer.text !== '材料已补充') {
      t.skip(`POST /api/v1/applications/<id>/photos is not on this backend yet (${answer.text})`);
      return;
    }
    const application = await who.app.api.application(id);
    assert.equal(application.photo_ids.length, 2);
  });

  test('a helper redeems an invitation, lists households, records a visit, files on behalf', async () => {
    const invitation = await staff.request('POST', '/api/v1/helpers/invitations', { village: 'cd-001' });
    const who = person('hank');
    const redeem = await ready(who.open('pages/helper/redeem', { code: invitation.code }));
    await mp.tap(redeem, '.redeem');
    await mp.until(() => redeem.data.done, { what: 'redeemed', page: redeem });
    assert.match(mp.text(redeem), /西冶街社区的救助协理员/);

    const visit = await ready(who.open('pages/helper/visit'));
    await mp.input(visit, '.f-head-name', '赵六');
    await mp.input(visit, '.f-head-id', idNumber('37030419500303123'));
    await mp.change(visit, '.f-hardship', '2');
    await mp.change(visit, '.f-causes', ['illness']);
    await addPhoto(visit, who);
    await mp.tap(visit, '.save');
    await mp.until(() => visit.data.recent.length === 1, { what: 'visit saved', page: visit });
    assert.equal(who.wx.shown.filter((x) => x.kind === 'toast').pop().text, '已保存，已同步报送镇街');

    const households = await ready(who.open('pages/helper/households'));
    assert.equal(households.data.total, 1);
    assert.match(mp.text(households), /赵六.*下次走访 \d{4}-\d{2}-\d{2}/);
    await mp.input(households, '.search', '钱');
    await mp.tap(households, '.find');
    await mp.until(() => households.data.total === 0, { what: 'no 钱', page: households });
    await mp.input(households, '.search', '赵');
    await mp.tap(households, '.find');
    await mp.until(() => households.data.total === 1, { what: 'found 赵六', page: households });
    assert.equal(households.data.items[0].name, '赵六');
    await mp.tap(households, '.visit');
    assert.match(who.wx.lastNavigation().url, /helper\/visit\?household=\d+&name=/);

    const filing = await ready(who.open('pages/helper/filing'));
    await fillApplicant(filing, { name: '赵六', id: idNumber('37030419500303123'), phone: '13700001111' });
    await mp.change(filing, '.f-consent-method', '1');
    await addPhoto(filing, who);
    await mp.change(filing, '.consent-box', ['agree']);
    await mp.tap(filing, '.submit');
    await mp.until(() => who.wx.shown.some((x) => x.kind === 'modal' && /见证人/.test(x.text)), { what: 'witness required', page: filing });
    await mp.input(filing, '.f-witness', '钱七');
    await mp.tap(filing, '.submit');
    await mp.until(() => filing.data.filings.length === 1, { what: 'filed on behalf', page: filing });
    assert.equal(filing.data.filings[0].name, '赵六');
    assert.equal(who.wx.shown.filter((s) => s.kind === 'subscribe-refused').length, 0);
  });

  test('a volunteer joins by invitation, reports a lead and reads its progress in plain words', async () => {
    backend.run(['create-staff', '--username', 'center-vol', '--password', 'long-enough-pass-1',
      '--role', 'center_staff']);
    const center = await staffApi('center-vol');
    const org = await center.request('POST', '/api/v1/social-orgs', {
      name: '爱心志愿服务队', kind: 'volunteer_team', contact_name: '刘队长', towns: ['chengdong'],
    });
    const invitation = await center.request('POST', '/api/v1/social-orgs/' + org.id + '/invitations');
    const who = person('vera');
    const redeem = await ready(who.open('pages/volunteer/redeem', { code: invitation.code }));
    await mp.tap(redeem, '.redeem');
    await mp.until(() => redeem.data.done, { what: 'joined', page: redeem });
    assert.match(mp.text(redeem), /您已加入爱心志愿服务队/);

    const report = await ready(who.open('pages/volunteer/report'));
    await mp.input(report, '.f-name', '孙大娘');
    await mp.input(report, '.f-phone', '13800002222');
    await mp.input(report, '.f-summary', '独居老人，冬季取暖困难');
    await addPhoto(report, who);
    await mp.tap(report, '.submit');
    await mp.until(() => report.data.reports.length === 1, { what: 'reported', page: report });
    assert.match(mp.text(report), /孙大娘 · 西冶街社区.*已收到，工作人员正在核实/);
    const again = await ready(who.open('pages/volunteer/report'));
    assert.equal(again.data.reports[0].status_text, '已收到，工作人员正在核实');
  });

  test('我的: privacy policy, my data, account deletion, logout', async () => {
    const who = person('eve');
    const me = await ready(who.open('pages/me/me'));
    await mp.tap(me, '.privacy');
    assert.equal(who.wx.lastNavigation().url, '/pages/privacy/privacy');
    const privacy = await ready(who.open('pages/privacy/privacy'));
    ['我们收集什么', '为什么收集', '谁能看到', '保存多久', '查看和删除'].forEach((h) => assert.match(mp.text(privacy), new RegExp(h)));
    await mp.tap(me, '.my-data');
    assert.equal(who.wx.lastNavigation().url, '/pages/mydata/mydata');
    const mine = await ready(who.open('pages/mydata/mydata'));
    assert.match(mp.text(mine), /我提交的申请（0）/);
    // 注销账号 asks first: declining sends nothing.
    const asked = () => who.wx.calls.filter((c) => c.method === 'POST' && /deletion-request$/.test(c.url)).length;
    who.wx.nextModalAnswer = false;
    await mp.tap(me, '.delete-account');
    await mp.until(() => who.wx.shown.some((s) => s.kind === 'modal' && s.title === '注销账号'), { what: 'the confirmation', page: me });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(asked(), 0);
    assert.equal(me.data.deletionRequested, false);
    await mp.tap(me, '.delete-account');
    await mp.until(() => me.data.deletionRequested, { what: 'deletion requested', page: me });
    assert.equal(asked(), 1);
    assert.match(mp.text(me), /注销申请已提交/);
    const again = await ready(who.open('pages/mydata/mydata'));
    assert.match(mp.text(again), /注销申请办理中/);
    await mp.tap(me, '.logout');
    await mp.until(() => who.wx.lastNavigation() && who.wx.lastNavigation().how === 'reLaunch', { what: 'logout' });
    assert.equal(who.wx.storage.has('e_rescue_token'), false);
  });

  test('我的数据 shows my application whole; the center closes my account and I am logged out', async () => {
    const who = person('gus');
    await ready(who.open('pages/me/me'));
    await fileOne(who.app.api);
    const mine = await ready(who.open('pages/mydata/mydata'));
    assert.equal(mine.data.applications.length, 1);
    assert.match(mine.data.applications[0].idNumber, /^37030419720701\d{3}[\dX]$/, 'whole, not masked');
    assert.equal(mp.all(mine, '.lead').length, 1);
    const me = await ready(who.open('pages/me/me'));
    await mp.tap(me, '.delete-account');
    await mp.until(() => me.data.deletionRequested, { what: 'deletion requested', page: me });

    backend.run(['create-staff', '--username', 'center-del', '--password', 'long-enough-pass-1', '--role', 'center_staff']);
    const center = await staffApi('center-del');
    const pending = await center.request('GET', '/api/v1/deletion-requests?status=pending');
    const request = pending.find((r) => r.user_id === mine.data.account.id);
    const done = await center.request('POST', '/api/v1/deletion-requests/' + request.id + '/decide', { outcome: 'completed' });
    assert.equal(done.outcome.kept.length, 1, 'the application is kept under the retention duty');
    // The old token is revoked: the next request logs in again as a new, empty account.
    const after = await ready(who.open('pages/mydata/mydata'));
    assert.equal(after.data.applications.length, 0);
    assert.notEqual(after.data.account.id, mine.data.account.id);
  });

  test('home, policy per kind with its papers, service points and phones', async () => {
    const who = person('fay');
    const home = await ready(who.open('pages/index/index'));
    assert.ok(home.data.policies.length >= 4);
    await mp.tap(home, '.policy');
    const url = who.wx.lastNavigation().url;
    const code = /code=(\w+)/.exec(url)[1];
    const policy = await ready(who.open('pages/policy/policy', { code }));
    assert.ok(policy.data.policy.documents.length > 0);
    assert.equal(mp.all(policy, '.paper').length, policy.data.policy.documents.length);
    await mp.tap(policy, '.apply');
    assert.equal(who.wx.lastNavigation().url, '/pages/apply/apply?type=' + code);
    const service = await ready(who.open('pages/service/service'));
    await mp.tap(service, '.call-hotline');
    assert.equal(who.wx.shown.pop().kind, 'call');
    assert.ok(mp.all(service, '.call-town').length >= 1);
    assert.equal(mp.all(service, '.locate').length, 0, 'no map without a place');

    // The center gives the town's service point its place: 查看位置 opens WeChat's map.
    backend.run(['create-staff', '--username', 'center-1', '--password', 'long-enough-pass-1', '--role', 'center_staff']);
    const center = await staffApi('center-1');
    const town = service.data.towns[0];
    await center.request('PATCH', '/api/v1/public/contacts/' + town.id, { address: '城东街道便民服务中心', latitude: 36.4872, longitude: 117.8561 });
    const again = await ready(who.open('pages/service/service'));
    await mp.tap(again, '.locate');
    const shown = who.wx.shown.pop();
    assert.deepEqual([shown.kind, shown.latitude, shown.longitude, shown.address], ['location', 36.4872, 117.8561, '城东街道便民服务中心']);
  });

  // What a phone does with a scanned code: a plain link under our prefix opens the page the
  // console maps it to with ?q=<the link>; the fake WeChat's 小程序码 reads as "<page>?scene=…",
  // which WeChat opens with ?scene=<scene, URI-encoded>.
  function scanned(text) {
    const link = /^https:\/\/[^?]+\/(\w+)\?/.exec(text);
    if (link) return { route: LINK_PAGES[link[1]], query: { q: encodeURIComponent(text), scancode_time: '1764662400' } };
    const [route, scene] = text.split('?scene=');
    return { route, query: { scene: encodeURIComponent(scene) } };
  }

  async function png(url) {
    const res = await fetch(backend.base + url, { headers: { Authorization: 'Bearer ' + staff.token } });
    assert.equal(res.status, 200, url);
    return { kind: res.headers.get('x-code-kind'), texts: decodeCodes(Buffer.from(await res.arrayBuffer())) };
  }

  test("the poster's and the invitation's codes open their pages with the village or code", async () => {
    for (const kind of ['link', 'wxacode']) {
      const poster = await png('/api/v1/villages/cd-001/poster.png?kind=' + kind);
      assert.equal(poster.kind, kind);
      assert.equal(poster.texts.length, 1, JSON.stringify(poster.texts));
      const { route, query } = scanned(poster.texts[0]);
      assert.equal(route, 'pages/apply/apply');
      const who = person('scan-' + kind);
      const apply = await ready(who.open(route, query));
      assert.equal(apply.data.area.villages[apply.data.area.villageIndex].code, 'cd-001');
      assert.equal(apply.data.area.presetVillage, '西冶街社区');

      const invitation = await staff.request('POST', '/api/v1/helpers/invitations', { village: 'cd-001' });
      const code = await png(invitation.qr_url + '&kind=' + kind);
      assert.equal(code.kind, kind);
      const opened = scanned(code.texts[0]);
      assert.equal(opened.route, 'pages/helper/redeem');
      const redeem = await ready(who.open(opened.route, opened.query));
      assert.equal(redeem.data.code, invitation.code);
      await mp.tap(redeem, '.redeem');
      await mp.until(() => redeem.data.done, { what: 'redeemed from the ' + kind, page: redeem });
    }
  });

  describe('every page: loading, then an error with 重试 instead of a blank screen', () => {
    let stateCenter;
    const params = { 'pages/detail/detail': { id: '1' }, 'pages/papers/papers': { id: '1' }, 'pages/policy/policy': { code: 'dibao' } };
    for (const route of APP.pages) {
      test(route, async () => {
        const who = person('state-' + route.replace(/\W/g, '-'));
        await who.app.api.ensureLogin();
        if (route.includes('detail') || route.includes('papers')) {
          params[route] = { id: String(await fileOne(who.app.api)) };
        }
        if (route.includes('helper/') && !route.includes('redeem')) {
          const invitation = await staff.request('POST', '/api/v1/helpers/invitations', { village: 'cd-001' });
          await who.app.api.redeemInvitation(invitation.code);
          who.wx.storage.delete('e_rescue_user');
        }
        if (route.includes('volunteer/') && !route.includes('redeem')) {
          // A volunteer's page: the person first joins a team (the center registers it).
          if (!stateCenter) {
            backend.run(['create-staff', '--username', 'center-state', '--password', 'long-enough-pass-1',
              '--role', 'center_staff']);
            stateCenter = await staffApi('center-state');
          }
          const org = await stateCenter.request('POST', '/api/v1/social-orgs', {
            name: '状态测试服务队' + route.length, kind: 'volunteer_team', contact_name: '王队长', towns: ['chengdong'],
          });
          const invitation = await stateCenter.request('POST', '/api/v1/social-orgs/' + org.id + '/invitations');
          await who.app.api.redeemVolunteerInvitation(invitation.code);
          who.wx.storage.delete('e_rescue_user');
        }
        const release = who.wx.hold();
        const page = who.open(route, params[route] || {});
        assert.equal(page.data.status, 'loading');
        assert.match(mp.text(page), /正在加载/);
        who.wx.offline = true;
        release();
        await mp.until(() => page.data.status === 'error', { what: 'error state', page });
        assert.match(mp.text(page), /网络不可用.*重试/);
        who.wx.offline = false;
        await mp.tap(page, '.state-retry');
        await ready(page);
        for (const { event } of mp.eventBindings(page)) assert.doesNotMatch(event, /longpress|longtap/);
        page.close();
      });
    }
  });

  test('text follows the WeChat font setting, never below 17px', async () => {
    const large = person('gus', { fontSize: 24 });
    const page = await ready(large.open('pages/service/service'));
    assert.equal(mp.attrs(mp.one(page, '#page-meta')).rootFontSize, '24px');
    assert.equal(mp.attrs(mp.one(page, '#page-meta')).pageFontSize, '24px');
    const small = person('hal', { fontSize: 12 });
    const smallPage = await ready(small.open('pages/service/service'));
    assert.equal(mp.attrs(mp.one(smallPage, '#page-meta')).rootFontSize, '17px');
  });
});
