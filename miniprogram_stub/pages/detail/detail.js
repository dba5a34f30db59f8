// 申请详情: status, the timeline in plain Chinese, adding papers and withdrawal while nothing is
// decided, and after a refusal how to ask for a review (复核) and whom to call. WeChat messages
// about an application open this page with ?id=<application id>.
const { STATUS_LABELS, TYPE_LABELS } = require('../../utils/api.js');
const { definePage } = require('../../utils/page.js');

const OPEN = ['submitted', 'accepted', 'investigating'];
const REFUSED = ['not_eligible'];

definePage({
  data: { id: null, application: null, statusLabel: '', typeLabel: '', canWithdraw: false, canAddPapers: false, refused: false, hotline: null, timeline: [] },

  onLoad(options) {
    this.setData({ id: Number(options.id) });
  },

  onShow() {
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => Promise.all([api.application(this.data.id), api.contacts().catch(() => [])]))
        .then(([application, contacts]) => {
          this.setData({ hotline: contacts.find((c) => c.kind === 'district_hotline') || null });
          this.show(application);
        }),
    );
  },

  show(application) {
    const open = OPEN.indexOf(application.status) >= 0;
    this.setData({
      application,
      statusLabel: STATUS_LABELS[application.status] || application.status,
      typeLabel: TYPE_LABELS[application.type] || application.type_label,
      canWithdraw: open,
      canAddPapers: open,
      refused: application.status === 'decided' && REFUSED.indexOf(application.outcome) >= 0,
      timeline: application.timeline.map((step) => ({
        title: step.title,
        at: (step.at || '').replace('T', ' ').slice(0, 16),
        notice: step.notice,
      })),
    });
  },

  addPapers() {
    wx.navigateTo({ url: '/pages/papers/papers?id=' + this.data.id });
  },

  call(e) {
    wx.makePhoneCall({ phoneNumber: e.currentTarget.dataset.phone });
  },

  service() {
    wx.navigateTo({ url: '/pages/service/service' });
  },

  withdraw() {
    const api = getApp().api;
    wx.showModal({
      title: '撤回申请',
      content: '撤回后本次申请不再办理，如有需要可重新申请。确定撤回吗？',
      confirmText: '撤回',
      confirmColor: '#be1e2d',
      success: (res) => {
        if (!res.confirm) return;
        api
          .withdraw(this.data.id)
          .then((application) => {
            this.show(application);
            wx.showToast({ title: '已撤回', icon: 'success' });
          })
          .catch((err) => api.showError(err));
      },
    });
  },
});
