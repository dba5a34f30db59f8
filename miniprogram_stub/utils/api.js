// The reference client of our API: WeChat login, authenticated requests, photo upload through
// wx.uploadFile, idempotency keys reused on retry, subscribe requests and error display.
// `wx` is the mini-program global; tests pass their own whose request/uploadFile make real HTTP
// calls (see test/e2e.test.js). Nothing here touches the page: pages call these and show results.

const TOKEN_KEY = 'e_rescue_token';
const USER_KEY = 'e_rescue_user';
const PENDING_KEYS = 'e_rescue_pending_keys';

// Network failures (no answer at all) are retried this many times with the same idempotency
// key; an answer from the server, even an error, is never retried blindly.
const NETWORK_RETRIES = 2;
const RETRY_DELAY_MS = 300;
// wx.requestSubscribeMessage accepts at most three template ids per call.
const MAX_TEMPLATES_PER_ASK = 3;

const STATUS_LABELS = {
  submitted: '已提交',
  accepted: '已受理',
  investigating: '调查核实中',
  decided: '已办结',
  withdrawn: '已撤回',
};

const TYPE_LABELS = {
  dibao: '最低生活保障（低保）',
  tekun: '特困人员供养',
  temporary: '临时救助',
  medical: '医疗救助',
};

// The helper's visit form: codes the API takes, with the words a helper reads.
const VISIT_CHOICES = {
  kind: [
    { value: 'visit', label: '入户走访' },
    { value: 'phone', label: '电话询问' },
  ],
  health: [
    { value: 'healthy', label: '健康' },
    { value: 'frail', label: '年老体弱' },
    { value: 'chronic', label: '慢性病' },
    { value: 'serious', label: '重病、大病' },
    { value: 'disabled', label: '残疾' },
  ],
  labour_capacity: [
    { value: 'full', label: '有劳动能力' },
    { value: 'partial', label: '部分丧失劳动能力' },
    { value: 'none', label: '无劳动能力' },
  ],
  hardship: [
    { value: 'none', label: '无明显困难' },
    { value: 'general', label: '一般困难' },
    { value: 'severe', label: '严重困难（当天报镇街）' },
    { value: 'urgent', label: '急难（当天报镇街）' },
  ],
  causes: [
    { value: 'illness', label: '因病' },
    { value: 'disability', label: '因残' },
    { value: 'accident', label: '因意外' },
    { value: 'disaster', label: '因灾' },
    { value: 'unemployment', label: '失业' },
    { value: 'schooling', label: '因学' },
    { value: 'elderly_alone', label: '独居老人' },
    { value: 'other', label: '其他' },
  ],
  categories: [
    { value: 'dibao', label: '低保对象' },
    { value: 'tekun', label: '特困人员' },
    { value: 'disabled', label: '残疾人' },
    { value: 'orphan', label: '孤困儿童' },
    { value: 'vagrant', label: '流浪乞讨人员' },
    { value: 'left_behind', label: '农村三留守' },
    { value: 'special_family', label: '特殊困难家庭' },
    { value: 'poverty_relapse', label: '脱贫享受政策人员' },
  ],
};

// Chinese names of request fields, for error lines such as "身份证号：校验位不正确".
const FIELD_LABELS = {
  type: '救助类型',
  applicant: '申请人',
  name: '姓名',
  id_number: '身份证号',
  phone: '手机号',
  town: '镇街',
  village: '村（社区）',
  address: '住址',
  household: '家庭成员',
  relation: '关系',
  monthly_income: '家庭月收入',
  reason: '申请理由',
  photo_ids: '照片',
  medical: '住院信息',
  hospital: '医院',
  admission_date: '入院日期',
  discharge_date: '出院日期',
  total_cost: '总费用',
  out_of_pocket: '自付费用',
  temporary: '临时救助信息',
  what_happened: '发生了什么',
  happened_on: '发生日期',
  on_behalf: '代办信息',
  relationship: '与申请人关系',
  consent_method: '同意方式',
  consent_photo_id: '同意书照片',
  witness_name: '见证人',
  applicant_phone: '申请人电话',
  consent: '同意书',
  file: '文件',
  code: '邀请码',
  head: '户主',
  kind: '方式',
  members: '家庭成员',
  health: '健康状况',
  labour_capacity: '劳动能力',
  hardship: '困难程度',
  causes: '致困原因',
  categories: '人员类别',
  needs: '需求',
  note: '备注',
  visited_on: '走访日期',
  next_visit_on: '下次走访日期',
};

function apiError(status, body) {
  const data = body && typeof body === 'object' ? body : {};
  const err = new Error(data.message || '请求失败，请稍后再试');
  err.code = data.code || 'http_' + status;
  err.status = status;
  err.errors = data.errors || {};
  err.requestId = data.request_id || '';
  return err;
}

function networkError(detail) {
  const err = new Error('网络不可用，请检查网络后重试');
  err.code = 'network';
  err.status = 0;
  err.errors = {};
  err.detail = detail || '';
  return err;
}

// Flatten {"applicant": {"phone": ["..."]}, "photo_ids": ["..."]} into readable lines.
function fieldErrors(errors, prefix) {
  const lines = [];
  if (!errors || typeof errors !== 'object') return lines;
  Object.keys(errors).forEach((key) => {
    const value = errors[key];
    // Keys are field names, list positions, or dotted paths ("applicant.phone").
    const label = String(key)
      .split('.')
      .map((part) => (/^\d+$/.test(part) ? '第' + (Number(part) + 1) + '项' : FIELD_LABELS[part] || part))
      .join(' · ');
    const path = prefix ? prefix + ' · ' + label : label;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
      lines.push(path + '：' + value.join('；'));
    } else if (typeof value === 'string') {
      lines.push(path + '：' + value);
    } else if (value && typeof value === 'object') {
      lines.push(...fieldErrors(value, path));
    }
  });
  return lines;
}

// The text to show a person for an error in the API's shape {code, message, errors}.
function errorText(err) {
  if (!err) return '出错了，请稍后再试';
  const lines = fieldErrors(err.errors);
  const message = err.message || '出错了，请稍后再试';
  return lines.length ? message + '\n' + lines.join('\n') : message;
}

// One key per user action (one tap on 提交): kept until the action succeeds, so a retry of the
// same action — automatic or a second tap after a failure — never creates a second record.
function newIdempotencyKey() {
  const rand = Math.random().toString(36).slice(2, 12);
  return 'mp-' + Date.now().toString(36) + '-' + rand;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function createApi({ wx, base, retryDelayMs = RETRY_DELAY_MS }) {
  let token = wx.getStorageSync(TOKEN_KEY) || null;

  function authHeader() {
    return token ? { Authorization: 'Bearer ' + token } : {};
  }

  function forgetLogin() {
    token = null;
    wx.removeStorageSync(TOKEN_KEY);
    wx.removeStorageSync(USER_KEY);
  }

  // One HTTP request; resolves with the body of a 2xx answer, rejects with an error carrying
  // {code, message, errors, status}.
  function send(method, path, data, headers) {
    return new Promise((resolve, reject) => {
      wx.request({
        url: base + path,
        method,
        data,
        dataType: 'json',
        header: Object.assign({ 'Content-Type': 'application/json' }, authHeader(), headers),
        success(res) {
          if (res.statusCode >= 200 && res.statusCode < 300) return resolve(res.data);
          if (res.statusCode === 401) forgetLogin();
          reject(apiError(res.statusCode, res.data));
        },
        fail(res) {
          reject(networkError(res && res.errMsg));
        },
      });
    });
  }

  async function withRetries(attempt) {
    for (let tries = 0; ; tries += 1) {
      try {
        return await attempt();
      } catch (err) {
        if (err.code !== 'network' || tries >= NETWORK_RETRIES) throw err;
        await sleep(retryDelayMs * (tries + 1));
      }
    }
  }

  // An authenticated request. Reads (GET) are retried after a network failure; writes only
  // when they carry an idempotency key, which makes repeating them safe. An expired login is
  // renewed once with wx.login and the request sent again.
  async function request(method, path, data, options = {}) {
    const headers = Object.assign({}, options.headers);
    if (options.idempotencyKey) headers['Idempotency-Key'] = options.idempotencyKey;
    const retryable = method === 'GET' || Boolean(options.idempotencyKey);
    const once = () => send(method, path, data, headers);
    try {
      return await (retryable ? withRetries(once) : once());
    } catch (err) {
      if (err.status === 401 && options.relogin !== false) {
        await login();
        return retryable ? withRetries(once) : once();
      }
      throw err;
    }
  }

  function wxLoginCode() {
    return new Promise((resolve, reject) => {
      wx.login({
        success: (res) => resolve(res.code),
        fail: () =>
          reject(Object.assign(new Error('微信登录失败，请重试'), { code: 'wx_login', errors: {} })),
      });
    });
  }

  // wx.login → POST /api/v1/auth/wechat-login; the token is kept in storage. A login code works
  // once, so a retry after a network failure asks wx.login for a fresh one.
  async function login() {
    const body = await withRetries(async () => {
      const code = await wxLoginCode();
      return send('POST', '/api/v1/auth/wechat-login', { code }, {});
    });
    token = body.token;
    wx.setStorageSync(TOKEN_KEY, token);
    wx.setStorageSync(USER_KEY, body.user);
    return body.user;
  }

  async function ensureLogin() {
    if (token) {
      const cached = wx.getStorageSync(USER_KEY);
      if (cached) return cached;
      return request('GET', '/api/v1/me');
    }
    return login();
  }

  // Upload one photo with wx.uploadFile (multipart field "file"); resolves with {id, ...}.
  function uploadOnce(filePath) {
    return new Promise((resolve, reject) => {
      wx.uploadFile({
        url: base + '/api/v1/uploads',
        filePath,
        name: 'file',
        header: authHeader(),
        success(res) {
          let body = res.data;
          if (typeof body === 'string') {
            try {
              body = JSON.parse(body);
            } catch (e) {
              body = {};
            }
          }
          if (res.statusCode >= 200 && res.statusCode < 300) return resolve(body);
          if (res.statusCode === 401) forgetLogin();
          reject(apiError(res.statusCode, body));
        },
        fail(res) {
          reject(networkError(res && res.errMsg));
        },
      });
    });
  }

  // Uploading the same picture twice gives the same photo back (the server deduplicates by
  // content), so an upload is safe to retry.
  async function uploadPhoto(filePath) {
    try {
      return await withRetries(() => uploadOnce(filePath));
    } catch (err) {
      if (err.status !== 401) throw err;
      await login();
      return withRetries(() => uploadOnce(filePath));
    }
  }

  // Keys of actions not yet confirmed, by action name, so a retry after a crash or a second tap
  // reuses the key (e.g. 'apply' while the apply page is open).
  function actionKey(action) {
    const pending = wx.getStorageSync(PENDING_KEYS) || {};
    if (!pending[action]) {
      pending[action] = newIdempotencyKey();
      wx.setStorageSync(PENDING_KEYS, pending);
    }
    return pending[action];
  }

  function actionDone(action) {
    const pending = wx.getStorageSync(PENDING_KEYS) || {};
    delete pending[action];
    wx.setStorageSync(PENDING_KEYS, pending);
  }

  // POST /api/v1/applications under the action's idempotency key; the key is dropped only once
  // the server has answered with the application (or refused it for good).
  async function submitApplication(body, { action = 'apply' } = {}) {
    const key = actionKey(action);
    try {
      const application = await request('POST', '/api/v1/applications', body, {
        idempotencyKey: key,
      });
      actionDone(action);
      return application;
    } catch (err) {
      // A refused body will be edited before the next try: a new body needs a new key.
      if (err.status === 422 || err.status === 409) actionDone(action);
      throw err;
    }
  }

  // The template ids to ask for; an older server without the endpoint means "none".
  async function subscriptionTemplates() {
    try {
      const templates = await request('GET', '/api/v1/subscriptions/templates');
      return Array.isArray(templates) ? templates : [];
    } catch (err) {
      if (err.status === 404 || err.status === 405 || err.code === 'network') return [];
      throw err;
    }
  }

  // Template ids are fetched when a page loads (`loadTemplates`), never in the tap: WeChat lets
  // wx.requestSubscribeMessage run only in the tap handler's own call stack ("仅在点击行为时调用"),
  // so anything awaited before it would make the call fail on a phone.
  let templates = [];

  async function loadTemplates() {
    try {
      templates = await subscriptionTemplates();
    } catch (err) {
      templates = [];
    }
    return templates;
  }

  // Call this first thing in a tap handler, before any await: it asks the user right away to
  // accept up to three message templates (of `events`), then tells the server what they
  // answered. Never fails the action it accompanies: problems are in the result
  // ({asked, results, recorded, error}).
  function requestSubscribe(events) {
    const wanted = templates
      .filter((t) => !events || events.indexOf(t.event) >= 0)
      .slice(0, MAX_TEMPLATES_PER_ASK);
    if (!wanted.length || typeof wx.requestSubscribeMessage !== 'function') {
      return Promise.resolve({ asked: false, results: {}, recorded: [] });
    }
    const tmplIds = wanted.map((t) => t.template_id);
    // The executor runs now, synchronously: the call stays inside the tap.
    const answered = new Promise((resolve) => {
      wx.requestSubscribeMessage({
        tmplIds,
        success: (res) => resolve(res),
        fail: (res) => resolve({ errMsg: (res && res.errMsg) || 'requestSubscribeMessage:fail' }),
      });
    });
    return answered.then(async (answer) => {
      const results = {};
      tmplIds.forEach((id) => {
        if (['accept', 'reject', 'ban', 'filter'].indexOf(answer[id]) >= 0) results[id] = answer[id];
      });
      if (!Object.keys(results).length) {
        const error = /fail/.test(answer.errMsg || '') ? new Error(answer.errMsg) : undefined;
        return { asked: true, results, recorded: [], error };
      }
      try {
        const recorded = await request('POST', '/api/v1/subscriptions', { results });
        return { asked: true, results, recorded };
      } catch (err) {
        if (err.status === 404) return { asked: true, results, recorded: [] };
        return { asked: true, results, recorded: [], error: err };
      }
    });
  }

  function showError(err) {
    const text = errorText(err);
    if (text.indexOf('\n') >= 0 || text.length > 14) {
      // A toast shows ~14 characters: longer messages and field lists go to a modal.
      wx.showModal({ title: '提示', content: text, showCancel: false, confirmText: '知道了' });
    } else {
      wx.showToast({ title: text, icon: 'none', duration: 3000 });
    }
    return text;
  }

  function query(params) {
    const parts = Object.keys(params || {})
      .filter((k) => params[k] !== undefined && params[k] !== null && params[k] !== '')
      .map((k) => encodeURIComponent(k) + '=' + encodeURIComponent(params[k]));
    return parts.length ? '?' + parts.join('&') : '';
  }

  return {
    login,
    ensureLogin,
    request,
    uploadPhoto,
    submitApplication,
    actionKey,
    actionDone,
    subscriptionTemplates,
    loadTemplates,
    requestSubscribe,
    showError,
    errorText,
    me: () => request('GET', '/api/v1/me'),
    // Public information: no login needed.
    policies: () => request('GET', '/api/v1/public/policies', null, { relogin: false }),
    contacts: () => request('GET', '/api/v1/public/contacts', null, { relogin: false }),
    areas: () => request('GET', '/api/v1/areas'),
    logout: () =>
      request('POST', '/api/v1/auth/logout', null, { relogin: false }).then((res) => {
        forgetLogin();
        return res;
      }),
    myApplications: (params) =>
      request('GET', '/api/v1/applications' + query(Object.assign({ page: 1 }, params))),
    application: (id) => request('GET', '/api/v1/applications/' + Number(id)),
    withdraw: (id) => request('POST', '/api/v1/applications/' + Number(id) + '/withdraw'),
    // Papers added to an open application (or sent in answer to a request for more).
    addPapers: (id, photoIds) => {
      const action = 'papers-' + Number(id);
      const key = actionKey(action);
      return request('POST', '/api/v1/applications/' + Number(id) + '/photos', { photo_ids: photoIds }, {
        idempotencyKey: key,
      }).then((application) => {
        actionDone(action);
        return application;
      });
    },
    messages: (params) => request('GET', '/api/v1/messages' + query(Object.assign({ page: 1 }, params))),
    markRead: (id) => request('POST', '/api/v1/messages/' + Number(id) + '/read'),
    ledger: (params) => request('GET', '/api/v1/ledgers' + query(Object.assign({ page: 1 }, params))),
    // What a 小程序码's scene stands for: {page, params}.
    launch: (scene) =>
      request('GET', '/api/v1/launch/' + encodeURIComponent(scene), null, { relogin: false }),
    myData: () => request('GET', '/api/v1/me/data'),
    requestDeletion: (reason) => request('POST', '/api/v1/me/deletion-request', { reason }),
    redeemInvitation: (code) => request('POST', '/api/v1/helpers/redeem', { code }),
    redeemVolunteerInvitation: (code) => request('POST', '/api/v1/volunteer/redeem', { code }),
    volunteerReports: (params) =>
      request('GET', '/api/v1/volunteer/reports' + query(Object.assign({ page: 1 }, params))),
    reportAsVolunteer: (body, { action = 'volunteer-report' } = {}) => {
      const key = actionKey(action);
      return request('POST', '/api/v1/volunteer/reports', body, { idempotencyKey: key }).then((report) => {
        actionDone(action);
        return report;
      });
    },
    helperFilings: (params) =>
      request('GET', '/api/v1/helper/filings' + query(Object.assign({ page: 1 }, params))),
    visits: (params) => request('GET', '/api/v1/visits' + query(Object.assign({ page: 1 }, params))),
    recordVisit: (body, { action = 'visit' } = {}) => {
      const key = actionKey(action);
      return request('POST', '/api/v1/visits', body, { idempotencyKey: key }).then((visit) => {
        actionDone(action);
        return visit;
      });
    },
    get token() {
      return token;
    },
  };
}

// The town and village of a village code in GET /api/v1/areas, for preselecting pickers.
function findVillage(towns, code) {
  for (let t = 0; t < (towns || []).length; t += 1) {
    const villages = towns[t].villages || [];
    for (let v = 0; v < villages.length; v += 1) {
      if (villages[v].code === code) {
        return { town: towns[t], village: villages[v], townIndex: t, villageIndex: v };
      }
    }
  }
  return null;
}

module.exports = {
  createApi,
  errorText,
  fieldErrors,
  findVillage,
  newIdempotencyKey,
  STATUS_LABELS,
  TYPE_LABELS,
  VISIT_CHOICES,
};
