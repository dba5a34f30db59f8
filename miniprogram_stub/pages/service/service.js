// 服务网点和电话: the district hotline, other lines and each town's 社会救助服务平台; tap to call.
// A service point with a known place opens it in WeChat's map (wx.openLocation, which needs no
// location permission).
const { definePage } = require('../../utils/page.js');

definePage({
  data: { hotline: null, lines: [], towns: [] },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api.contacts().then((contacts) =>
        this.setData({
          hotline: contacts.find((c) => c.kind === 'district_hotline') || null,
          lines: contacts.filter((c) => c.kind !== 'district_hotline' && c.kind !== 'town_platform'),
          towns: contacts.filter((c) => c.kind === 'town_platform'),
        }),
      ),
    );
  },

  call(e) {
    wx.makePhoneCall({ phoneNumber: String(e.currentTarget.dataset.phone) });
  },

  locate(e) {
    const point = this.data.towns[Number(e.currentTarget.dataset.index)];
    wx.openLocation({
      latitude: Number(point.latitude),
      longitude: Number(point.longitude),
      name: point.name,
      address: point.address || '',
      scale: 17,
    });
  },
});
