// 申请救助: opened from the home page, or from a service-point poster's QR code with
// ?village=<code>, which preselects the town and village.
const { villageFromOptions } = require('../../utils/api.js');
const { applicationBody, emptyForm, missing } = require('../../utils/forms.js');
const formPage = require('../../utils/form-page.js');

Page(
  Object.assign({}, formPage, {
    data: { types: [], area: null, form: emptyForm(), photos: [], submitting: false },

    onLoad(options) {
      this.loadAreas(villageFromOptions(options));
    },

    // One tap = one action: the subscribe request must come from the tap itself, and the
    // application goes out under the action's idempotency key (reused if the tap is repeated
    // after a failure, so the server never records it twice).
    submit() {
      const api = getApp().api;
      const photoIds = this.data.photos.map((p) => p.id);
      const problem = missing(this.data.form, this.data.area, photoIds);
      if (problem) return wx.showToast({ title: problem, icon: 'none' });
      if (this.data.submitting) return undefined;
      this.setData({ submitting: true });
      return api
        .requestSubscribe(['received', 'status', 'result'])
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
