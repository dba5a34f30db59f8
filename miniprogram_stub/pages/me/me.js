// 我的 (tab): who I am, 隐私政策, 我的信息 (what the center keeps about me, GET /api/v1/me/data),
// 注销账号 (POST /api/v1/me/deletion-request), 退出登录, and 成为协理员 with an invitation code.
// Where the server has no such endpoint yet, the page says how to ask the center instead.
const { definePage } = require('../../utils/page.js');

const ASK_THE_CENTER =
  '请携带本人身份证到所在镇（街道）社会救助服务窗口，或拨打区社会救助热线，申请查阅或删除您的信息、注销账号。';

function missingRoute(err) {
  return err && (err.status === 404 || err.status === 405);
}

definePage({
  data: { user: null, roleLabel: '', myData: null, deletionRequested: false },

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

  redeemVolunteer() {
    wx.navigateTo({ url: '/pages/volunteer/redeem' });
  },

  redeem() {
    wx.navigateTo({ url: '/pages/helper/redeem' });
  },

  showMyData() {
    const api = getApp().api;
    return api
      .myData()
      .then((data) => this.setData({ myData: JSON.stringify(data, null, 2) }))
      .catch((err) => {
        if (!missingRoute(err)) return api.showError(err);
        return wx.showModal({ title: '查看我的信息', content: ASK_THE_CENTER, showCancel: false, confirmText: '知道了' });
      });
  },

  deleteAccount() {
    const api = getApp().api;
    wx.showModal({
      title: '注销账号',
      content: '注销后将不能在小程序查看申请进度。已办结救助的档案须依法保存。确定申请注销吗？',
      confirmText: '申请注销',
      confirmColor: '#a8071a',
      success: (res) => {
        if (!res.confirm) return;
        api
          .requestDeletion('本人在小程序申请注销')
          .then(() => {
            this.setData({ deletionRequested: true });
            wx.showModal({ title: '已提交', content: '注销申请已提交，区社会救助中心将在15个工作日内办理并通知您。', showCancel: false, confirmText: '知道了' });
          })
          .catch((err) => {
            if (!missingRoute(err)) return api.showError(err);
            return wx.showModal({ title: '注销账号', content: ASK_THE_CENTER, showCancel: false, confirmText: '知道了' });
          });
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
