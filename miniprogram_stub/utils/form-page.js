// Page handlers shared by the apply page and the helper's filing page (mixed into the page).
const { pickAndUpload } = require('./media.js');
const { TYPES, areaState } = require('./forms.js');

module.exports = {
  // The towns and villages, with `villageCode` preselected; rejects for the page's error state.
  loadAreas(villageCode, typeCode) {
    const api = getApp().api;
    return api
      .ensureLogin()
      .then(() => Promise.all([api.areas(), api.loadTemplates()]))
      .then(([towns]) => {
        const typeIndex = Math.max(0, TYPES.findIndex((t) => t.value === typeCode));
        this.setData({ area: areaState(towns, villageCode), types: TYPES, 'form.typeIndex': typeIndex });
      });
  },
  onInput(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: e.detail.value });
  },
  onType(e) {
    this.setData({ 'form.typeIndex': Number(e.detail.value) });
  },
  onTown(e) {
    const townIndex = Number(e.detail.value);
    const towns = this.data.area.towns;
    this.setData({
      'area.townIndex': townIndex,
      'area.villages': towns[townIndex].villages,
      'area.villageIndex': -1,
      'area.presetVillage': '',
    });
  },
  onVillage(e) {
    this.setData({ 'area.villageIndex': Number(e.detail.value), 'area.presetVillage': '' });
  },
  onDate(e) {
    this.setData({ ['form.' + e.currentTarget.dataset.field]: e.detail.value });
  },
  // 我已阅读并同意: nothing personal is sent before this box is ticked.
  onConsent(e) {
    this.setData({ agreed: (e.detail.value || []).indexOf('agree') >= 0 });
  },
  addMember() {
    this.setData({ 'form.household': this.data.form.household.concat([{ name: '', relation: '' }]) });
  },
  onMember(e) {
    const { index, field } = e.currentTarget.dataset;
    this.setData({ [`form.household[${index}].${field}`]: e.detail.value });
  },
  removeMember(e) {
    const household = this.data.form.household.slice();
    household.splice(Number(e.currentTarget.dataset.index), 1);
    this.setData({ 'form.household': household });
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
};
