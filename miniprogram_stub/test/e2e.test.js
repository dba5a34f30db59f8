// End to end: utils/api.js, driven with a `wx` whose request/uploadFile make real HTTP calls,
// against the real backend (migrated SQLite database, fake WeChat API) started for this test:
// login → subscribe → photo upload → application (a lost answer retried with the same key) →
// status → withdraw, and the errors a person would be shown.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const { after, before, describe, test } = require('node:test');

const { createApi, findVillage, STATUS_LABELS } = require('../utils/api.js');
const { launchParams } = require('../utils/launch.js');
const { E_RESCUE, startBackend, createWx, writePhoto, idNumber } = require('../test-support/backend.js');

const hasBackend = fs.existsSync(E_RESCUE);

const skip = !hasBackend && `${E_RESCUE} missing (run make install)`;

describe('the mini-program against the real backend', { skip }, () => {
  let backend;
  let wx;
  let api;

  before(async () => {
    backend = await startBackend({ villages: [['chengdong', '西冶街社区', 'cd-001']] });
    wx = createWx({ user: 'nina' });
    api = createApi({ wx, base: backend.base, retryDelayMs: 20 });
  });

  after(async () => {
    if (backend) await backend.stop();
  });

  function applicationBody(photoIds, { village, town }) {
    return {
      type: 'dibao',
      applicant: {
        name: '张三',
        id_number: idNumber('37030419881212123'),
        phone: '13812345678',
        town: town.code,
        village: village.code,
        address: '城东街道西冶街1号',
      },
      household: [{ name: '李四', relation: '配偶' }],
      monthly_income: '800.00',
      reason: '家中老人长期患病，无固定收入。',
      photo_ids: photoIds,
    };
  }

  test('login → photo upload → application → status → withdraw', async (t) => {
    // Login: wx.login's code is exchanged for our token, kept in storage.
    const user = await api.login();
    assert.equal(user.role, 'resident');
    assert.ok(api.token);
    assert.equal(wx.storage.get('e_rescue_token'), api.token);
    assert.equal((await api.me()).id, user.id);

    // The poster's QR code opens the apply page with ?village=cd-001: the village is preselected.
    const code = launchParams({ village: 'cd-001' }).village;
    const place = findVillage(await api.areas(), code);
    assert.equal(place.village.name, '西冶街社区');
    assert.equal(place.town.code, 'chengdong');

    // Subscribe request from the submit tap: template ids come from the server (on page load).
    await api.loadTemplates();
    wx.__gesture = 1; // as inside a tap handler (test-support/miniprogram.js raises it there)
    const asking = api.requestSubscribe(['received', 'status', 'result']);
    wx.__gesture = 0;
    const subscribed = await asking;
    assert.equal(subscribed.asked, true);
    const asked = wx.shown.find((s) => s.kind === 'subscribe');
    assert.equal(asked.tmplIds.length, 3);
    assert.deepEqual(
      subscribed.recorded.map((r) => r.status),
      ['accept', 'accept', 'accept'],
    );

    // Photo upload through wx.uploadFile (multipart "file").
    const photo = await api.uploadPhoto(writePhoto(backend.tmp, { seed: 1 }));
    assert.ok(Number.isInteger(photo.id));
    const upload = wx.calls.find((c) => c.method === 'UPLOAD');
    assert.equal(upload.header.Authorization, 'Bearer ' + api.token);

    // The application: its first answer is lost on the way back; the client retries with the
    // same Idempotency-Key and gets the same application, not a second one.
    wx.loseNextResponse(/\/api\/v1\/applications$/);
    const filed = await api.submitApplication(applicationBody([photo.id], place));
    const posts = wx.calls.filter((c) => c.method === 'POST' && /applications$/.test(c.url));
    assert.equal(posts.length, 2);
    assert.ok(posts[0].header['Idempotency-Key']);
    assert.equal(posts[0].header['Idempotency-Key'], posts[1].header['Idempotency-Key']);
    assert.equal(filed.status, 'submitted');
    assert.equal(filed.id_number.includes('*'), true, 'the ID number comes back masked');
    const mine = await api.myApplications();
    assert.equal(mine.total, 1);
    assert.equal(mine.items[0].id, filed.id);

    // A new application (for another person: one person has one open 低保 application) is a
    // new action with a new key.
    const another = applicationBody([photo.id], place);
    another.applicant = Object.assign({}, another.applicant, { id_number: idNumber('37030419900909123') });
    const second = await api.submitApplication(another);
    assert.notEqual(second.id, filed.id);
    const lastTwo = wx.calls.filter((c) => c.method === 'POST' && /applications$/.test(c.url));
    assert.notEqual(lastTwo[2].header['Idempotency-Key'], lastTwo[0].header['Idempotency-Key']);

    // Status: the detail page shows the timeline in plain Chinese.
    const detail = await api.application(filed.id);
    assert.equal(STATUS_LABELS[detail.status], '已提交');
    assert.deepEqual(detail.timeline.map((s) => s.title), ['已提交申请，等待镇街受理']);

    // Withdraw, then a second withdraw is refused with a message to show.
    const withdrawn = await api.withdraw(filed.id);
    assert.equal(withdrawn.status, 'withdrawn');
    assert.equal((await api.application(filed.id)).status, 'withdrawn');
    await assert.rejects(api.withdraw(filed.id), (err) => {
      assert.equal(err.status, 409);
      assert.equal(err.code, 'not_withdrawable');
      api.showError(err);
      return true;
    });
    const shown = wx.shown[wx.shown.length - 1];
    assert.ok(/撤回/.test(shown.text), shown.text);
    t.diagnostic(`application ${filed.id}: submitted → withdrawn`);
  });

  test('a refused application shows the message and each field problem in Chinese', async () => {
    await api.ensureLogin();
    const photo = await api.uploadPhoto(writePhoto(backend.tmp, { seed: 2 }));
    const place = findVillage(await api.areas(), 'cd-001');
    const body = applicationBody([photo.id], place);
    body.applicant.phone = '12345';
    await assert.rejects(api.submitApplication(body), (err) => {
      assert.equal(err.status, 422);
      assert.ok(err.errors['applicant.phone'], JSON.stringify(err.errors));
      const text = api.showError(err);
      assert.match(text, /申请人 · 手机号：/);
      return true;
    });
    assert.equal(wx.shown[wx.shown.length - 1].kind, 'modal');
  });

  test('an expired login is renewed with wx.login and the request sent again', async () => {
    await api.ensureLogin();
    wx.storage.set('e_rescue_token', 'expired-token');
    const stale = createApi({ wx, base: backend.base, retryDelayMs: 20 });
    const mine = await stale.myApplications();
    assert.ok(mine.total >= 1, 'the same WeChat user sees their applications again');
    assert.notEqual(stale.token, 'expired-token');
  });

  test('without login the API answers 401 in the error shape', async () => {
    const anon = createApi({ wx: createWx({ user: 'olga' }), base: backend.base });
    await assert.rejects(anon.request('GET', '/api/v1/me', null, { relogin: false }), (err) => {
      assert.equal(err.status, 401);
      assert.equal(err.code, 'unauthorized');
      assert.equal(err.message, '请先登录');
      return true;
    });
  });
});
