// The one page shape for redeeming a one-time invitation code (a village helper's, a volunteer's):
// the code arrives from the invitation's QR code (?code=, a plain QR of our HTTPS link ?q=, or a
// 小程序码 ?scene=, resolved through the API) or is typed; the page says when the account already
// holds the role, and redeems once. Each page names its API call, its words and its next step.
const { resolveLaunch } = require('./launch.js');

// kind: { already: the initial `already`, alreadyOf(me), redeem(api, code), doneTitle, methods }
function redeemPage(kind) {
  return Object.assign(
    {
      data: { code: '', saving: false, done: null, already: kind.already },

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
              .then((me) => this.setData({ already: kind.alreadyOf(me) }));
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
          .then(() => kind.redeem(api, this.data.code.trim()))
          .then((done) => {
            this.setData({ done });
            wx.showToast({ title: kind.doneTitle, icon: 'success' });
          })
          .catch((err) => api.showError(err))
          .then(() => this.setData({ saving: false }));
      },
    },
    kind.methods,
  );
}

module.exports = { redeemPage };
