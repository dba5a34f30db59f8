// 首页: login, the ways in (apply, my applications; a helper's visits and filings), each kind of
// aid in plain words, and the phones to call.
Page({
  data: { user: null, isHelper: false, policies: [], hotline: null, townPhones: [] },

  onLoad() {
    const api = getApp().api;
    api
      .ensureLogin()
      .then(() => api.me())
      .then((user) => {
        getApp().globalData.user = user;
        this.setData({ user, isHelper: user.role === 'helper' });
      })
      .catch((err) => api.showError(err));
    // Public information shows even when login fails (no network for WeChat, say).
    api
      .policies()
      .then((policies) => this.setData({ policies }))
      .catch(() => this.setData({ policies: [] }));
    api
      .contacts()
      .then((contacts) =>
        this.setData({
          hotline: contacts.find((c) => c.kind === 'district_hotline') || null,
          townPhones: contacts.filter((c) => c.kind === 'town_platform'),
        }),
      )
      .catch(() => this.setData({ hotline: null, townPhones: [] }));
  },

  go(e) {
    wx.navigateTo({ url: e.currentTarget.dataset.url });
  },

  call(e) {
    wx.makePhoneCall({ phoneNumber: e.currentTarget.dataset.phone });
  },
});
