// 博山e救助 reference client. The API base is set per environment.
App({
  globalData: { apiBase: 'http://127.0.0.1:5000' },
});
