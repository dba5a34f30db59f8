// 申请救助: from the home page or a policy page (?type=), or from a service-point poster: its
// plain QR code (?q=<URL with village>) or 小程序码 (?scene=, resolved through the API) preselects
// the town and village.
const { applicationBody, emptyForm, missing } = require('../../utils/forms.js');
const formPage = require('../../utils/form-page.js');
const { resolveLaunch } = require('../../utils/launch.js');
const { definePage } = require('../../utils/page.js');

definePage(
  Object.assign({}, formPage, {
    data: { types: [], area: null, form: emptyForm(), photos: [], agreed: false, submitting: false },

    onLoad(options) {
      this._launch = options;
      return this.load();
    },

    load() {
      const api = getApp().api;
      return this.withState(() =>
        resolveLaunch(api, this._launch).then((params) => this.loadAreas(params.village, params.type)),
      );
    },

    // One tap = one action. The subscribe request comes first, in the tap's own call stack (WeChat
    // refuses it anywhere else); the application then goes out under the action's idempotency
    // key (reused if the tap is repeated after a failure, so it is never recorded twice).
    submit() {
      const api = getApp().api;
      if (this.data.submitting) return undefined;
      const subscribed = api.requestSubscribe(['received', 'status', 'result']);
      const photoIds = this.data.photos.map((p) => p.id);
      const problem = missing(this.data.form, this.data.area, photoIds);
      if (problem) return wx.showToast({ title: problem, icon: 'none' });
      if (!this.data.agreed) return wx.showToast({ title: '请先阅读并同意隐私政策', icon: 'none' });
      this.setData({ submitting: true });
      return subscribed
        .then(() => api.submitApplication(applicationBody(this.data.form, this.data.area, photoIds)))
        .then((application) => {
          wx.showToast({ title: '已提交', icon: 'success' });
          wx.redirectTo({ url: '/pages/detail/detail?id=' + application.id });
        })
        .catch((err) => api.showError(err))
        .then(() => this.setData({ submitting: false }));
    },
  }),
);
