// 我的 (tab): who I am, 隐私政策, 我的数据 (what the center keeps about me: pages/mydata, from
// GET /api/v1/me/data), 注销账号 (after a confirmation, POST /api/v1/me/deletion-request; the
// center carries it out), 退出登录, and 成为协理员 with an invitation code.
const { definePage } = require('../../utils/page.js');

definePage({
  data: { user: null, roleLabel: '', deletionRequested: false },

  onLoad() {},

  onShow() {
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.me())
        .then((user) =>
          this.setData({
            user,
            roleLabel: user.role === 'helper' ? '村居协理员 · ' + ((user.village && user.village.name) || '') : '居民',
          }),
        ),
    );
  },

  privacy() {
    wx.navigateTo({ url: '/pages/privacy/privacy' });
  },

  redeem() {
    wx.navigateTo({ url: '/pages/helper/redeem' });
  },

  showMyData() {
    wx.navigateTo({ url: '/pages/mydata/mydata' });
  },

  deleteAccount() {
    const api = getApp().api;
    wx.showModal({
      title: '注销账号',
      content:
        '注销后将解除与本微信的绑定并退出登录，消息记录将被删除；已提交的救助申请属于社会救助档案，须依法保存。确定申请注销吗？',
      confirmText: '申请注销',
      confirmColor: '#a8071a',
      success: (res) => {
        if (!res.confirm) return;
        api
          .requestDeletion('本人在小程序申请注销')
          .then(() => {
            this.setData({ deletionRequested: true });
            wx.showModal({
              title: '已提交',
              content: '注销申请已提交，区社会救助综合服务中心办理后您将自动退出登录。',
              showCancel: false,
              confirmText: '知道了',
            });
          })
          .catch((err) => api.showError(err));
      },
    });
  },

  logout() {
    const api = getApp().api;
    return api
      .logout()
      .catch(() => undefined)
      .then(() => {
        getApp().globalData.user = null;
        this.setData({ user: null });
        wx.showToast({ title: '已退出登录', icon: 'none' });
        wx.reLaunch({ url: '/pages/index/index' });
      });
  },
});
