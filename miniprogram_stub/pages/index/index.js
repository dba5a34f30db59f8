const { createApi } = require('../../utils/api.js');

Page({
  data: { user: null, towns: [] },
  onLoad() {
    this.api = createApi({ wx, base: getApp().globalData.apiBase });
    this.api
      .login()
      .then((user) => {
        this.setData({ user });
        return this.api.areas();
      })
      .then((towns) => this.setData({ towns }))
      .catch((err) => this.api.showError(err));
  },
});
