// utils/api.js rules that need no server: a `wx` whose request answers from a script.

const assert = require('node:assert/strict');
const { describe, test } = require('node:test');

const { createApi, errorText, findVillage } = require('../utils/api.js');
const { launchParams } = require('../utils/launch.js');

// A wx whose request answers each call with the next scripted reply:
// {status, body} for an answer, or 'network' for a failure without one.
function scriptedWx(replies) {
  const calls = [];
  const shown = [];
  const storage = new Map([['e_rescue_token', 'tok']]);
  return {
    calls,
    shown,
    storage,
    request({ url, method, data, header, success, fail }) {
      calls.push({ url, method, data, header });
      const reply = replies.shift();
      setImmediate(() => {
        if (!reply || reply === 'network') return fail({ errMsg: 'request:fail' });
        success({ statusCode: reply.status, data: reply.body });
      });
    },
    login: ({ success }) => success({ code: 'user-test' }),
    requestSubscribeMessage(opts) {
      shown.push({ kind: 'subscribe', tmplIds: opts.tmplIds });
      opts.success({ [opts.tmplIds[0]]: 'accept' });
    },
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
    showToast: (o) => shown.push({ kind: 'toast', text: o.title }),
    showModal: (o) => shown.push({ kind: 'modal', text: o.content }),
  };
}

const NOT_FOUND = { status: 404, body: { code: 'not_found', message: '未找到相关内容', errors: {} } };

describe('subscribe requests', () => {
  test('a server without the templates endpoint means nothing is asked and nothing fails', async () => {
    const wx = scriptedWx([NOT_FOUND]);
    const api = createApi({ wx, base: 'http://x' });
    await api.loadTemplates();
    const result = await api.requestSubscribe();
    assert.deepEqual(result, { asked: false, results: {}, recorded: [] });
    assert.equal(wx.shown.length, 0);
  });

  test('an unreachable templates endpoint is treated the same way', async () => {
    const wx = scriptedWx(['network', 'network', 'network']);
    const api = createApi({ wx, base: 'http://x', retryDelayMs: 1 });
    await api.loadTemplates();
    const result = await api.requestSubscribe();
    assert.equal(result.asked, false);
  });

  test('at most three templates are asked for and the answers are sent back', async () => {
    const templates = ['a', 'b', 'c', 'd'].map((id) => ({ event: id, template_id: 't-' + id }));
    const wx = scriptedWx([{ status: 200, body: templates }, { status: 200, body: [] }]);
    const api = createApi({ wx, base: 'http://x' });
    await api.loadTemplates();
    const result = await api.requestSubscribe();
    assert.deepEqual(wx.shown[0].tmplIds, ['t-a', 't-b', 't-c']);
    assert.deepEqual(wx.calls[1].data, { results: { 't-a': 'accept' } });
    assert.equal(result.asked, true);
  });
});

describe('subscribe inside the tap', () => {
  test('wx.requestSubscribeMessage is called synchronously, before requestSubscribe returns', async () => {
    const templates = [{ event: 'received', template_id: 't-r' }];
    const wx = scriptedWx([{ status: 200, body: templates }, { status: 200, body: [] }]);
    const api = createApi({ wx, base: 'http://x' });
    await api.loadTemplates();
    const pending = api.requestSubscribe(['received']);
    assert.deepEqual(wx.shown, [{ kind: 'subscribe', tmplIds: ['t-r'] }], 'asked in the same call stack');
    await pending;
  });
});

describe('idempotency keys', () => {
  test('a failed submit keeps its key and the next tap reuses it', async () => {
    const wx = scriptedWx(['network', 'network', 'network', { status: 201, body: { id: 7 } }]);
    const api = createApi({ wx, base: 'http://x', retryDelayMs: 1 });
    await assert.rejects(api.submitApplication({}), (err) => err.code === 'network');
    const created = await api.submitApplication({});
    assert.equal(created.id, 7);
    const keys = wx.calls.map((c) => c.header['Idempotency-Key']);
    assert.equal(new Set(keys).size, 1, keys.join(','));
    assert.equal(keys.length, 4);
  });

  test('after success the next submit is a new action with a new key', async () => {
    const ok = { status: 201, body: { id: 1 } };
    const wx = scriptedWx([ok, ok]);
    const api = createApi({ wx, base: 'http://x' });
    await api.submitApplication({});
    await api.submitApplication({});
    assert.notEqual(wx.calls[0].header['Idempotency-Key'], wx.calls[1].header['Idempotency-Key']);
  });

  test('a write without a key is never repeated after a network failure', async () => {
    const wx = scriptedWx(['network', { status: 200, body: {} }]);
    const api = createApi({ wx, base: 'http://x', retryDelayMs: 1 });
    await assert.rejects(api.withdraw(3), (err) => err.code === 'network');
    assert.equal(wx.calls.length, 1);
  });

  test('reads are retried after a network failure', async () => {
    const wx = scriptedWx(['network', { status: 200, body: { id: 1 } }]);
    const api = createApi({ wx, base: 'http://x', retryDelayMs: 1 });
    assert.deepEqual(await api.me(), { id: 1 });
    assert.equal(wx.calls.length, 2);
  });
});

describe('error display', () => {
  test('the message comes first, then each field problem with its Chinese name', () => {
    const text = errorText({
      message: '提交的信息有误，请检查后重试',
      errors: { 'applicant.id_number': ['校验位不正确'], household: { 0: { name: ['不能为空'] } } },
    });
    assert.equal(
      text,
      '提交的信息有误，请检查后重试\n申请人 · 身份证号：校验位不正确\n家庭成员 · 第1项 · 姓名：不能为空',
    );
  });

  test('short messages are a toast, long ones a modal', () => {
    const wx = scriptedWx([]);
    const api = createApi({ wx, base: 'http://x' });
    api.showError({ message: '请先登录', errors: {} });
    api.showError({ message: '邀请码无效、已使用、已撤销或已过期，请联系镇街工作人员重新获取' });
    assert.deepEqual(
      wx.shown.map((s) => s.kind),
      ['toast', 'modal'],
    );
  });

  test('a 401 forgets the stored login', async () => {
    const wx = scriptedWx([{ status: 401, body: { code: 'unauthorized', message: '请先登录' } }]);
    const api = createApi({ wx, base: 'http://x' });
    await assert.rejects(api.request('GET', '/api/v1/me', null, { relogin: false }));
    assert.equal(wx.storage.has('e_rescue_token'), false);
    assert.equal(api.token, null);
  });
});

describe('what a page was opened with', () => {
  test('from a query, a plain QR code link (q) and a mini-program code scene', () => {
    assert.equal(launchParams({ village: 'cd-001' }).village, 'cd-001');
    const link = 'https://jiuzhu.example.cn/mp/apply?village=cd-001';
    assert.equal(launchParams({ q: encodeURIComponent(link), scancode_time: '1700000000' }).village, 'cd-001');
    assert.equal(launchParams({ scene: encodeURIComponent('v=cd-001') }).scene, 'v=cd-001');
    assert.equal(launchParams({}).village, undefined);
  });

  test('is found with its town in the areas list', () => {
    const towns = [
      { code: 'baita', villages: [{ code: 'bt-001' }] },
      { code: 'chengdong', villages: [{ code: 'x' }, { code: 'cd-001' }] },
    ];
    const place = findVillage(towns, 'cd-001');
    assert.equal(place.town.code, 'chengdong');
    assert.deepEqual([place.townIndex, place.villageIndex], [1, 1]);
    assert.equal(findVillage(towns, 'none'), null);
  });
});
