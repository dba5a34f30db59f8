// 反映困难线索 (volunteers): report someone in hardship in a town my organisation serves (name,
// phone, village, what I saw, photos), and read back my own reports' progress in plain words.
// The backend keeps everything else about the case from me.
const { pickAndUpload } = require('../../utils/media.js');
const { definePage } = require('../../utils/page.js');

function emptyReport() {
  return { name: '', phone: '', summary: '', townIndex: 0, villageIndex: 0 };
}

definePage({
  data: { towns: [], form: emptyReport(), photos: [], reports: [], saving: false },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.me())
        .then((me) => {
          if (me.role !== 'volunteer') {
            throw Object.assign(new Error('反映线索仅供已加入志愿服务队、社会组织或企业的志愿者使用'), { errors: {} });
          }
          return Promise.all([api.areas(), api.volunteerReports({ per_page: 20 })]);
        })
        .then(([areas, page]) => {
          const towns = (areas.towns || areas).filter((t) => (t.villages || []).length);
          this.setData({ towns, reports: page.items });
        }),
    );
  },

  onInput(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: e.detail.value });
  },

  onTown(e) {
    this.setData({ 'form.townIndex': Number(e.detail.value), 'form.villageIndex': 0 });
  },

  onVillage(e) {
    this.setData({ 'form.villageIndex': Number(e.detail.value) });
  },

  addPhotos() {
    const api = getApp().api;
    return pickAndUpload(api, this.data.photos.length)
      .then((added) => this.setData({ photos: this.data.photos.concat(added) }))
      .catch((err) => api.showError(err));
  },

  removePhoto(e) {
    const photos = this.data.photos.slice();
    photos.splice(Number(e.currentTarget.dataset.index), 1);
    this.setData({ photos });
  },

  submit() {
    const api = getApp().api;
    const f = this.data.form;
    const town = this.data.towns[f.townIndex];
    const village = town && town.villages[f.villageIndex];
    if (!f.name.trim() || !f.summary.trim() || !village) {
      return wx.showToast({ title: '请填写姓名、村（社区）和看到的情况', icon: 'none' });
    }
    if (this.data.saving) return undefined;
    this.setData({ saving: true });
    return api
      .reportAsVolunteer({
        name: f.name.trim(),
        phone: f.phone.trim() || null,
        village: village.code,
        summary: f.summary.trim(),
        photo_ids: this.data.photos.map((p) => p.id),
      })
      .then((report) => {
        wx.showToast({ title: '已报送，感谢您的爱心', icon: 'none' });
        this.setData({ form: emptyReport(), photos: [], reports: [report].concat(this.data.reports) });
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ saving: false }));
  },
});
