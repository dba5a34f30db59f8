// 我的申请 (tab): newest first, status in plain words; pull down to refresh, scroll for more.
const { STATUS_LABELS, TYPE_LABELS } = require('../../utils/api.js');
const { definePage } = require('../../utils/page.js');

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

definePage({
  data: { items: [], total: 0, page: 0, more: false, loadingMore: false },

  onLoad() {},

  onShow() {
    return this.load();
  },

  onPullDownRefresh() {
    return this.load().then(() => wx.stopPullDownRefresh());
  },

  onReachBottom() {
    return this.more();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.myApplications({ page: 1, per_page: PER_PAGE }))
        .then((res) => this.show(res, 1, [])),
    );
  },

  more() {
    const api = getApp().api;
    if (!this.data.more || this.data.loadingMore) return Promise.resolve();
    this.setData({ loadingMore: true });
    const page = this.data.page + 1;
    return api
      .myApplications({ page, per_page: PER_PAGE })
      .then((res) => this.show(res, page, this.data.items))
      .catch((err) => api.showError(err))
      .then(() => this.setData({ loadingMore: false }));
  },

  show(res, page, before) {
    const items = before.concat(res.items.map(row));
    this.setData({ items, total: res.total, page, more: items.length < res.total });
  },

  open(e) {
    wx.navigateTo({ url: '/pages/detail/detail?id=' + e.currentTarget.dataset.id });
  },

  apply() {
    wx.navigateTo({ url: '/pages/apply/apply' });
  },
});
