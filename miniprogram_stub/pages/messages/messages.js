// 消息 (tab): every message WeChat was asked to deliver to me, delivered or not, newest first;
// unread ones in bold with a count on the tab. Opening one marks it read and opens its page.
const { definePage } = require('../../utils/page.js');

const PER_PAGE = 20;

function row(m) {
  return {
    id: m.id,
    title: m.title,
    body: m.body,
    page: m.page,
    at: (m.created_at || '').replace('T', ' ').slice(0, 16),
    unread: !m.read_at,
  };
}

definePage({
  data: { items: [], total: 0, unread: 0, page: 0, more: false },

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
        .then(() => api.messages({ page: 1, per_page: PER_PAGE }))
        .then((res) => this.show(res, 1, [])),
    );
  },

  more() {
    const api = getApp().api;
    if (!this.data.more) return Promise.resolve();
    const page = this.data.page + 1;
    return api
      .messages({ page, per_page: PER_PAGE })
      .then((res) => this.show(res, page, this.data.items))
      .catch((err) => api.showError(err));
  },

  show(res, page, before) {
    const items = before.concat(res.items.map(row));
    this.setData({ items, total: res.total, unread: res.unread, page, more: items.length < res.total });
    this.badge(res.unread);
  },

  badge(unread) {
    if (unread > 0 && typeof wx.setTabBarBadge === 'function') {
      wx.setTabBarBadge({ index: 2, text: String(Math.min(unread, 99)) });
    } else if (typeof wx.removeTabBarBadge === 'function') {
      wx.removeTabBarBadge({ index: 2 });
    }
  },

  open(e) {
    const api = getApp().api;
    const index = Number(e.currentTarget.dataset.index);
    const message = this.data.items[index];
    const opened = message.unread
      ? api.markRead(message.id).then(() => {
          const unread = Math.max(0, this.data.unread - 1);
          this.setData({ ['items[' + index + '].unread']: false, unread });
          this.badge(unread);
        })
      : Promise.resolve();
    return opened
      .then(() => {
        if (message.page) wx.navigateTo({ url: '/' + message.page.replace(/^\//, '') });
      })
      .catch((err) => api.showError(err));
  },
});
