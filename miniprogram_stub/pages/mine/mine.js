// 我的申请: newest first, with status in plain words; pull down to refresh, scroll for more.
const { STATUS_LABELS, TYPE_LABELS } = require('../../utils/api.js');

const PER_PAGE = 20;

function row(a) {
  return {
    id: a.id,
    type: TYPE_LABELS[a.type] || a.type_label,
    status: a.status,
    statusLabel: STATUS_LABELS[a.status] || a.status,
    name: a.name,
    submitted: (a.submitted_at || '').slice(0, 10),
    outcome: a.outcome_label || '',
  };
}

Page({
  data: { items: [], total: 0, page: 0, loading: false },

  onShow() {
    return this.reload();
  },

  onPullDownRefresh() {
    this.reload().then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    if (this.data.items.length < this.data.total) this.load(this.data.page + 1);
  },

  reload() {
    return this.load(1);
  },

  load(page) {
    const api = getApp().api;
    if (this.data.loading) return Promise.resolve();
    this.setData({ loading: true });
    return api
      .ensureLogin()
      .then(() => api.myApplications({ page, per_page: PER_PAGE }))
      .then((res) => {
        const items = (page === 1 ? [] : this.data.items).concat(res.items.map(row));
        this.setData({ items, total: res.total, page });
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ loading: false }));
  },

  open(e) {
    wx.navigateTo({ url: '/pages/detail/detail?id=' + e.currentTarget.dataset.id });
  },
});
