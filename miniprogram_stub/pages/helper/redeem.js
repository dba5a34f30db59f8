// 成为协理员: redeem the one-time invitation code from town staff (utils/redeem-page.js).
const { definePage } = require('../../utils/page.js');
const { redeemPage } = require('../../utils/redeem-page.js');

definePage(
  redeemPage({
    already: '',
    // The village the account already helps in, if it is a helper.
    alreadyOf: (me) => (me.role === 'helper' && me.village ? me.village.name : ''),
    redeem: (api, code) => api.redeemInvitation(code),
    doneTitle: '绑定成功',
    methods: {
      home() {
        wx.reLaunch({ url: '/pages/index/index' });
      },
    },
  }),
);
