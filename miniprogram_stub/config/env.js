// Written by scripts/configure.js (see README "The mini-program"): the district's appid and the
// API base of each environment. develop may use the loopback API of `make run`; trial and release
// must be https:// domains entered in the WeChat console's request/uploadFile domain lists.
module.exports = {
  appid: '',
  environments: {
    develop: { apiBase: 'http://127.0.0.1:5000', linkBase: '' },
    trial: { apiBase: '', linkBase: '' },
    release: { apiBase: '', linkBase: '' },
  },
};
