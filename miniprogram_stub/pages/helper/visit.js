// 走访记录 (helpers): record a household visit or phone call in my village. Severe or urgent
// hardship reaches the town's queue the same day; the list shows my village's recent visits.
const { VISIT_CHOICES } = require('../../utils/api.js');
const { pickAndUpload } = require('../../utils/media.js');
const { definePage } = require('../../utils/page.js');

function today() {
  const d = new Date();
  const pad = (n) => (n < 10 ? '0' + n : '' + n);
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
}

function emptyVisit() {
  return {
    kindIndex: 0,
    healthIndex: 0,
    labourIndex: 0,
    hardshipIndex: 0,
    head_name: '',
    head_id_number: '',
    phone: '',
    address: '',
    causes: [],
    categories: [],
    needs: '',
    note: '',
    visited_on: today(),
    next_visit_on: '',
  };
}

definePage({
  data: { choices: VISIT_CHOICES, village: null, form: emptyVisit(), photos: [], recent: [], saving: false },

  onLoad(options) {
    // From 我的走访户: ?household=<id>&name=<head of household>, prefilled.
    if (options.name) this.setData({ 'form.head_name': decodeURIComponent(options.name) });
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.me())
        .then((me) => {
          if (me.role !== 'helper' || !me.village) {
            throw Object.assign(new Error('走访记录仅供村（社区）救助协理员使用'), { errors: {} });
          }
          this.setData({ village: me.village });
          return api.visits({ per_page: 20 });
        })
        .then((page) => this.setData({ recent: page.items })),
    );
  },

  loadRecent() {
    const api = getApp().api;
    return api
      .visits({ per_page: 20 })
      .then((page) => this.setData({ recent: page.items }))
      .catch((err) => api.showError(err));
  },

  onInput(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: e.detail.value });
  },

  onPick(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: Number(e.detail.value) });
  },

  onChecks(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: e.detail.value });
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

  body() {
    const f = this.data.form;
    const c = VISIT_CHOICES;
    const body = {
      village: this.data.village.code,
      kind: c.kind[f.kindIndex].value,
      head: { name: f.head_name.trim(), id_number: f.head_id_number.trim() },
      phone: f.phone.trim() || null,
      address: f.address.trim() || null,
      health: c.health[f.healthIndex].value,
      labour_capacity: c.labour_capacity[f.labourIndex].value,
      hardship: c.hardship[f.hardshipIndex].value,
      causes: f.causes,
      categories: f.categories,
      needs: f.needs.trim() || null,
      note: f.note.trim() || null,
      photo_ids: this.data.photos.map((p) => p.id),
      visited_on: f.visited_on,
    };
    if (f.next_visit_on) body.next_visit_on = f.next_visit_on;
    return body;
  },

  save() {
    const api = getApp().api;
    const f = this.data.form;
    if (!f.head_name.trim() || !f.head_id_number.trim()) {
      return wx.showToast({ title: '请填写户主姓名和身份证号', icon: 'none' });
    }
    if (this.data.saving) return undefined;
    this.setData({ saving: true });
    return api
      .recordVisit(this.body())
      .then((visit) => {
        const urgent = visit.lead_id ? '，已同步报送镇街' : '';
        wx.showToast({ title: '已保存' + urgent, icon: 'none' });
        this.setData({ form: emptyVisit(), photos: [] });
        return this.loadRecent();
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ saving: false }));
  },
});
