// 加入志愿服务队: a member of a volunteer team, social organisation or enterprise redeems the
// one-time code the district center gave them (its QR code opens this page with ?code=, a plain
// QR of our HTTPS link ?q=, or a 小程序码 ?scene=j=<code>).
const { resolveLaunch } = require('../../utils/launch.js');
const { definePage } = require('../../utils/page.js');

definePage({
  data: { code: '', saving: false, done: null, already: false },

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
          .then((me) => this.setData({ already: me.role === 'volunteer' }));
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
      .then(() => api.redeemVolunteerInvitation(this.data.code.trim()))
      .then((member) => {
        this.setData({ done: member });
        wx.showToast({ title: '加入成功', icon: 'success' });
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ saving: false }));
  },

  report() {
    wx.redirectTo({ url: '/pages/volunteer/report' });
  },
});
