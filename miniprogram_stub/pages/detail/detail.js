// 申请详情: status, the timeline in plain Chinese, and withdrawal while nothing is decided.
// WeChat messages about an application open this page with ?id=<application id>.
const { STATUS_LABELS, TYPE_LABELS } = require('../../utils/api.js');

const WITHDRAWABLE = ['submitted', 'accepted', 'investigating'];

Page({
  data: { id: null, application: null, statusLabel: '', typeLabel: '', canWithdraw: false },

  onLoad(options) {
    this.setData({ id: Number(options.id) });
  },

  onShow() {
    return this.load();
  },

  load() {
    const api = getApp().api;
    return api
      .ensureLogin()
      .then(() => api.application(this.data.id))
      .then((application) => this.show(application))
      .catch((err) => api.showError(err));
  },

  show(application) {
    this.setData({
      application,
      statusLabel: STATUS_LABELS[application.status] || application.status,
      typeLabel: TYPE_LABELS[application.type] || application.type_label,
      canWithdraw: WITHDRAWABLE.indexOf(application.status) >= 0,
      timeline: application.timeline.map((step) => ({
        title: step.title,
        at: (step.at || '').replace('T', ' ').slice(0, 16),
        notice: step.notice,
      })),
    });
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
