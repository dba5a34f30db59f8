// The reference client of our API: WeChat login, authenticated requests, idempotency keys and
// error display. `wx` is the mini-program global; tests pass their own with real HTTP behind it.

const TOKEN_KEY = 'e_rescue_token';

function createApi({ wx, base }) {
  let token = wx.getStorageSync(TOKEN_KEY) || null;

  function request(method, path, data, headers = {}) {
    return new Promise((resolve, reject) => {
      wx.request({
        url: base + path,
        method,
        data,
        header: Object.assign(
          { 'Content-Type': 'application/json' },
          token ? { Authorization: 'Bearer ' + token } : {},
          headers,
        ),
        success(res) {
          if (res.statusCode >= 200 && res.statusCode < 300) return resolve(res.data);
          const body = res.data || {};
          const err = new Error(body.message || '请求失败，请稍后再试');
          err.code = body.code || 'http_' + res.statusCode;
          err.status = res.statusCode;
          err.errors = body.errors || {};
          if (res.statusCode === 401) {
            token = null;
            wx.removeStorageSync(TOKEN_KEY);
          }
          reject(err);
        },
        fail() {
          const err = new Error('网络不可用，请检查网络后重试');
          err.code = 'network';
          reject(err);
        },
      });
    });
  }

  function login() {
    return new Promise((resolve, reject) => {
      wx.login({
        success: ({ code }) =>
          request('POST', '/api/v1/auth/wechat-login', { code })
            .then((body) => {
              token = body.token;
              wx.setStorageSync(TOKEN_KEY, token);
              resolve(body.user);
            })
            .catch(reject),
        fail: () => reject(Object.assign(new Error('微信登录失败，请重试'), { code: 'wx_login' })),
      });
    });
  }

  // One key per user action: a retry of the same action reuses it, so the server never
  // creates a second record.
  function idempotencyKey() {
    const rand = Math.random().toString(36).slice(2, 12);
    return Date.now().toString(36) + '-' + rand;
  }

  function showError(err) {
    wx.showToast({ title: (err && err.message) || '出错了', icon: 'none', duration: 3000 });
  }

  return {
    login,
    request,
    idempotencyKey,
    showError,
    me: () => request('GET', '/api/v1/me'),
    areas: () => request('GET', '/api/v1/areas'),
    logout: () => request('POST', '/api/v1/auth/logout'),
    get token() {
      return token;
    },
  };
}

module.exports = { createApi };
