// 我的走访户 (helpers): the households of my village from the ledger, overdue for a visit first,
// with the next visit due; 查找 by part of the head of household's name (the ledger's `name`),
// 加载更多 for the next page; a household opens the visit form for it.
const { definePage } = require('../../utils/page.js');

const PER_PAGE = 20;

function row(r) {
  return {
    id: r.household_id,
    name: r.head_name,
    idNumber: r.id_number,
    address: r.address || '',
    hardship: r.hardship_label,
    lastVisit: r.last_visited_on,
    nextVisit: r.next_visit_on,
    overdue: r.overdue,
    daysOverdue: r.days_overdue,
  };
}

definePage({
  data: { items: [], total: 0, overdue: 0, page: 0, more: false, search: '', searching: false },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.me())
        .then((me) => {
          if (me.role !== 'helper') {
            throw Object.assign(new Error('“我的走访户”仅供村（社区）救助协理员使用'), { errors: {} });
          }
          this._village = me.village.code;
          return api.ledger(this.query(1));
        })
        .then((res) => this.show(res, 1, [])),
    );
  },

  more() {
    const api = getApp().api;
    if (!this.data.more) return Promise.resolve();
    const page = this.data.page + 1;
    return api
      .ledger(this.query(page))
      .then((res) => this.show(res, page, this.data.items))
      .catch((err) => api.showError(err));
  },

  query(page) {
    const name = this.data.search.trim();
    return Object.assign({ village: this._village, page, per_page: PER_PAGE }, name ? { name } : {});
  },

  show(res, page, before) {
    const items = before.concat(res.items.map(row));
    this.setData({ items, total: res.total, overdue: res.overdue, page, more: items.length < res.total });
  },

  onSearch(e) {
    this.setData({ search: e.detail.value });
  },

  find() {
    const api = getApp().api;
    this.setData({ searching: true });
    return api
      .ledger(this.query(1))
      .then((res) => this.show(res, 1, []))
      .catch((err) => api.showError(err))
      .then(() => this.setData({ searching: false }));
  },

  visit(e) {
    const h = this.data.items[Number(e.currentTarget.dataset.index)];
    wx.navigateTo({ url: '/pages/helper/visit?household=' + h.id + '&name=' + encodeURIComponent(h.name) });
  },
});
