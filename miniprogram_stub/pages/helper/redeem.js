// 成为协理员: redeem the one-time invitation code from town staff. The invitation's QR code opens
// this page with the code: a plain QR of our HTTPS link (?q=<URL with code>), a 小程序码 (?scene=,
// resolved through the API), or ?code= from inside the app.
const { resolveLaunch } = require('../../utils/launch.js');
const { definePage } = require('../../utils/page.js');

definePage({
  data: { code: '', saving: false, done: null, already: '' },

  onLoad(options) {
    this._launch = options;
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      resolveLaunch(api, this._launch).then((params) => {
        if (params.code) this.setData({ code: String(params.code) });
        return api
          .ensureLogin()
          .then(() => api.me())
          .then((me) => this.setData({ already: me.role === 'helper' && me.village ? me.village.name : '' }));
      }),
    );
  },

  onInput(e) {
    this.setData({ code: e.detail.value });
  },

  redeem() {
    const api = getApp().api;
    if (!this.data.code.trim()) return wx.showToast({ title: '请输入邀请码', icon: 'none' });
    if (this.data.saving) return undefined;
    this.setData({ saving: true });
    return api
      .ensureLogin()
      .then(() => api.redeemInvitation(this.data.code.trim()))
      .then((helper) => {
        this.setData({ done: helper });
        wx.showToast({ title: '绑定成功', icon: 'success' });
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ saving: false }));
  },

  home() {
    wx.reLaunch({ url: '/pages/index/index' });
  },
});
