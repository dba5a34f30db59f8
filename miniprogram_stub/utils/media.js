// Choosing and uploading photos of documents (ID card, hospital bills, ...).
const MAX_PHOTOS = 9;

function choosePhotos(count) {
  return new Promise((resolve, reject) => {
    wx.chooseMedia({
      count,
      mediaType: ['image'],
      sourceType: ['camera', 'album'],
      sizeType: ['compressed'],
      success: (res) => resolve(res.tempFiles.map((f) => f.tempFilePath)),
      fail: (res) => {
        if (res && /cancel/.test(res.errMsg || '')) return resolve([]);
        if (res && /privacy/.test(res.errMsg || '')) {
          return reject(
            Object.assign(new Error('需要您同意《博山e救助隐私保护指引》后才能拍照上传'), { code: 'privacy', errors: {} }),
          );
        }
        reject(Object.assign(new Error('无法选择照片，请检查相机和相册权限'), { code: 'choose', errors: {} }));
      },
    });
  });
}

// Let the user pick photos and upload each; resolves with [{id, path}] of those uploaded.
async function pickAndUpload(api, already) {
  const room = MAX_PHOTOS - already;
  if (room <= 0) {
    wx.showToast({ title: '最多上传9张照片', icon: 'none' });
    return [];
  }
  const paths = await choosePhotos(room);
  const uploaded = [];
  for (const path of paths) {
    wx.showLoading({ title: '正在上传照片', mask: true });
    try {
      const photo = await api.uploadPhoto(path);
      uploaded.push({ id: photo.id, path });
    } finally {
      wx.hideLoading();
    }
  }
  return uploaded;
}

module.exports = { MAX_PHOTOS, pickAndUpload };
