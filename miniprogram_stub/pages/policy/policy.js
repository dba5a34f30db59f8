// 政策说明 (?code=dibao|tekun|temporary|medical): who qualifies, the papers to bring or photograph,
// how long it takes, how to apply; 申请 opens the form with this kind of aid chosen.
const { definePage } = require('../../utils/page.js');

definePage({
  data: { code: '', policy: null },

  onLoad(options) {
    this.setData({ code: options.code || '' });
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api.policies().then((policies) => {
        const policy = policies.find((p) => p.code === this.data.code);
        if (!policy) throw Object.assign(new Error('未找到这项救助政策'), { errors: {} });
        this.setData({ policy });
        if (typeof wx.setNavigationBarTitle === 'function') wx.setNavigationBarTitle({ title: policy.title });
      }),
    );
  },

  apply() {
    wx.navigateTo({ url: '/pages/apply/apply?type=' + encodeURIComponent(this.data.code) });
  },
});
