// 首页: the ways in (apply, my applications, service points and phones; a helper's visits,
// households and filings; a volunteer's reports) and each kind of aid, tapping through to its policy page. Public
// information shows even when WeChat login fails; only a failure to reach us is an error.
const { definePage } = require('../../utils/page.js');

definePage({
  data: { user: null, isHelper: false, isVolunteer: false, policies: [], hotline: null },

  load() {
    const api = getApp().api;
    return this.withState(() => {
      const login = api
        .ensureLogin()
        .then(() => api.me())
        .then((user) => {
          getApp().globalData.user = user;
          this.setData({ user, isHelper: user.role === 'helper', isVolunteer: user.role === 'volunteer' });
        })
        .catch(() => this.setData({ user: null, isHelper: false, isVolunteer: false }));
      const info = Promise.all([api.policies(), api.contacts()]).then(([policies, contacts]) =>
        this.setData({ policies, hotline: contacts.find((c) => c.kind === 'district_hotline') || null }),
      );
      return Promise.all([login, info]);
    });
  },

  go(e) {
    wx.navigateTo({ url: e.currentTarget.dataset.url });
  },

  tab(e) {
    wx.switchTab({ url: e.currentTarget.dataset.url });
  },

  call(e) {
    wx.makePhoneCall({ phoneNumber: e.currentTarget.dataset.phone });
  },
});
