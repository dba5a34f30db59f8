// 帮办代办 (helpers): file an application on behalf of someone who cannot, with their consent
// (a signed form photographed, or spoken consent before a witness); below, what I filed.
const { STATUS_LABELS, TYPE_LABELS } = require('../../utils/api.js');
const { applicationBody, emptyForm, missing } = require('../../utils/forms.js');
const formPage = require('../../utils/form-page.js');
const { pickAndUpload } = require('../../utils/media.js');
const { definePage } = require('../../utils/page.js');

const CONSENT = [
  { value: 'signed_form', label: '本人签字的委托书（拍照上传）' },
  { value: 'verbal', label: '本人口头同意（需见证人）' },
];

function emptyBehalf() {
  return { relationship: '村协理员', consentIndex: 0, witness_name: '', applicant_phone: '' };
}

definePage(
  Object.assign({}, formPage, {
    data: {
      types: [],
      area: null,
      form: emptyForm(),
      photos: [],
      consent: CONSENT,
      behalf: emptyBehalf(),
      consentPhoto: null,
      filings: [],
      agreed: false,
      submitting: false,
    },

    load() {
      const api = getApp().api;
      return this.withState(() =>
        api
          .ensureLogin()
          .then(() => api.me())
          .then((me) => {
            if (me.role !== 'helper') {
              throw Object.assign(new Error('帮办代办仅供村（社区）救助协理员使用'), { errors: {} });
            }
            return Promise.all([this.loadFilings(), this.loadAreas(me.village && me.village.code)]);
          }),
      );
    },

    loadFilings() {
      const api = getApp().api;
      return api.helperFilings({ per_page: 20 }).then((page) =>
        this.setData({
          filings: page.items.map((a) => ({
            id: a.id,
            name: a.name,
            type: TYPE_LABELS[a.type] || a.type_label,
            status: STATUS_LABELS[a.status] || a.status,
          })),
        }),
      );
    },

    onBehalf(e) {
      this.setData({ ['behalf.' + e.currentTarget.dataset.field]: e.detail.value });
    },

    onConsentMethod(e) {
      this.setData({ 'behalf.consentIndex': Number(e.detail.value) });
    },

    addConsentPhoto() {
      const api = getApp().api;
      return pickAndUpload(api, 8)
        .then((added) => added.length && this.setData({ consentPhoto: added[0] }))
        .catch((err) => api.showError(err));
    },

    removeConsentPhoto() {
      this.setData({ consentPhoto: null });
    },

    // The subscribe request first, inside the tap: the helper hears about what they filed.
    submit() {
      const api = getApp().api;
      if (this.data.submitting) return undefined;
      const subscribed = api.requestSubscribe(['received', 'status', 'result']);
      const photoIds = this.data.photos.map((p) => p.id);
      const problem = missing(this.data.form, this.data.area, photoIds);
      if (problem) return wx.showToast({ title: problem, icon: 'none' });
      if (!this.data.agreed) return wx.showToast({ title: '请先阅读并同意隐私政策', icon: 'none' });
      const b = this.data.behalf;
      const onBehalf = {
        relationship: b.relationship.trim(),
        consent_method: CONSENT[b.consentIndex].value,
        consent_photo_id: this.data.consentPhoto ? this.data.consentPhoto.id : null,
        witness_name: b.witness_name.trim() || null,
        applicant_phone: b.applicant_phone.trim() || this.data.form.phone.trim(),
      };
      this.setData({ submitting: true });
      const body = applicationBody(this.data.form, this.data.area, photoIds, { on_behalf: onBehalf });
      return subscribed
        .then(() => api.submitApplication(body, { action: 'filing' }))
        .then(() => {
          wx.showToast({ title: '已代为提交', icon: 'success' });
          this.setData({ form: emptyForm(), photos: [], behalf: emptyBehalf(), consentPhoto: null, agreed: false });
          return this.loadFilings();
        })
        .catch((err) => api.showError(err))
        .then(() => this.setData({ submitting: false }));
    },

    open(e) {
      wx.navigateTo({ url: '/pages/detail/detail?id=' + e.currentTarget.dataset.id });
    },
  }),
);
