// 补充材料: photos of more papers for an open application, also the answer to the town's request
// for more papers. Sent with POST /api/v1/applications/<id>/photos under an idempotency key.
const { TYPE_LABELS } = require('../../utils/api.js');
const { pickAndUpload } = require('../../utils/media.js');
const { definePage } = require('../../utils/page.js');

definePage({
  data: { id: null, application: null, typeLabel: '', photos: [], sending: false },

  onLoad(options) {
    this.setData({ id: Number(options.id) });
    return this.load();
  },

  load() {
    const api = getApp().api;
    return this.withState(() =>
      api
        .ensureLogin()
        .then(() => api.application(this.data.id))
        .then((application) =>
          this.setData({ application, typeLabel: TYPE_LABELS[application.type] || application.type_label }),
        ),
    );
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

  send() {
    const api = getApp().api;
    if (this.data.sending) return undefined;
    if (!this.data.photos.length) return wx.showToast({ title: '请先拍照添加材料', icon: 'none' });
    this.setData({ sending: true });
    return api
      .addPapers(this.data.id, this.data.photos.map((p) => p.id))
      .then(() => {
        wx.showToast({ title: '材料已补充', icon: 'success' });
        this.setData({ photos: [] });
        wx.navigateBack({ delta: 1 });
      })
      .catch((err) => api.showError(err))
      .then(() => this.setData({ sending: false }));
  },
});
