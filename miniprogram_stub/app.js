// 博山e救助. The API base and appid come per environment from config/env.js (utils/config.js):
// develop may use `make run` on loopback; trial and release use the district's HTTPS domain.
const { createApi } = require('./utils/api.js');
const { environment } = require('./utils/config.js');

App({
  globalData: { user: null, env: null, launch: null, envError: '' },

  onLaunch(options) {
    this.globalData.launch = options || {};
    let base = '';
    try {
      const env = environment(wx);
      this.globalData.env = env;
      base = env.apiBase;
    } catch (err) {
      // A build without its environment configured: every page shows this in its error state.
      this.globalData.envError = '小程序尚未配置服务器地址，请联系区社会救助中心';
    }
    this.api = createApi({ wx, base });
    this.listenForPrivacy();
  },

  // WeChat asks before the first privacy-relevant call (the photo picker): the page on top shows
  // its popup (templates/privacy.wxml); a page without one declines, so nothing is collected.
  listenForPrivacy() {
    if (typeof wx.onNeedPrivacyAuthorization !== 'function') return;
    wx.onNeedPrivacyAuthorization((resolve) => {
      const pages = getCurrentPages();
      const page = pages[pages.length - 1];
      if (page && typeof page.askPrivacy === 'function') page.askPrivacy(resolve);
      else resolve({ event: 'disagree' });
    });
  },
});
