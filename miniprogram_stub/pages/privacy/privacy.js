// 隐私政策: what we collect, why (a statutory duty), who sees it, how long it is kept, and how to
// see or delete it. The hotline comes from the public contacts.
const { definePage } = require('../../utils/page.js');

definePage({
  data: { hotline: null },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api.contacts().then((contacts) =>
        this.setData({ hotline: contacts.find((c) => c.kind === 'district_hotline') || null }),
      ),
    );
  },

  openContract() {
    if (typeof wx.openPrivacyContract === 'function') wx.openPrivacyContract({});
  },

  call() {
    wx.makePhoneCall({ phoneNumber: this.data.hotline.phone });
  },
});
