// 博山e救助 reference client. The API base is set per environment (a trusted https domain in
// production, configured in the mini-program console's request and uploadFile domain lists).
const { createApi } = require('./utils/api.js');

App({
  globalData: { apiBase: 'http://127.0.0.1:5000', user: null },
  onLaunch() {
    this.api = createApi({ wx, base: this.globalData.apiBase });
  },
});
