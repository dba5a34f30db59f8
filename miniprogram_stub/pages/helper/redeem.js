// 成为协理员: opened from the QR code of a staff invitation (?code=...), or typed from paper.
Page({
  data: { code: '', done: null, saving: false },

  onLoad(options) {
    if (options && options.code) this.setData({ code: decodeURIComponent(options.code) });
  },

  onInput(e) {
    this.setData({ code: e.detail.value });
  },

  redeem() {
    const api = getApp().api;
    if (!this.data.code.trim()) return wx.showToast({ title: '请输入邀请码', icon: 'none' });
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
