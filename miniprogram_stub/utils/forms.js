// Shared by the apply page and the helper's filing page: pickers, inputs and the request body.
const { TYPE_LABELS, findVillage } = require('./api.js');

const TYPES = Object.keys(TYPE_LABELS).map((value) => ({ value, label: TYPE_LABELS[value] }));

function emptyForm() {
  return {
    typeIndex: 0,
    name: '',
    id_number: '',
    phone: '',
    address: '',
    monthly_income: '',
    reason: '',
    household: [],
    hospital: '',
    admission_date: '',
    discharge_date: '',
    total_cost: '',
    out_of_pocket: '',
    what_happened: '',
    happened_on: '',
  };
}

// The town/village picker state for a village code (from the poster's QR code) or none.
function areaState(towns, villageCode) {
  const place = villageCode ? findVillage(towns, villageCode) : null;
  const townIndex = place ? place.townIndex : 0;
  return {
    towns,
    townIndex,
    villages: (towns[townIndex] && towns[townIndex].villages) || [],
    villageIndex: place ? place.villageIndex : -1,
    presetVillage: place ? place.village.name : '',
  };
}

// The body of POST /api/v1/applications from the page's form and area state.
function applicationBody(form, area, photoIds, extra) {
  const type = TYPES[form.typeIndex].value;
  const town = area.towns[area.townIndex] || {};
  const village = area.villages[area.villageIndex] || {};
  const body = {
    type,
    applicant: {
      name: form.name.trim(),
      id_number: form.id_number.trim(),
      phone: form.phone.trim(),
      town: town.code || '',
      village: village.code || '',
      address: form.address.trim(),
    },
    household: form.household.filter((m) => m.name.trim()).map((m) => ({
      name: m.name.trim(),
      relation: m.relation.trim() || '家庭成员',
    })),
    monthly_income: form.monthly_income || '0',
    reason: form.reason.trim(),
    photo_ids: photoIds,
  };
  if (type === 'medical') {
    body.medical = {
      hospital: form.hospital.trim(),
      admission_date: form.admission_date,
      discharge_date: form.discharge_date,
      total_cost: form.total_cost || '0',
      out_of_pocket: form.out_of_pocket || '0',
    };
  }
  if (type === 'temporary') {
    body.temporary = { what_happened: form.what_happened.trim(), happened_on: form.happened_on };
  }
  return Object.assign(body, extra || {});
}

// What must be filled before sending (the server checks everything again).
function missing(form, area, photoIds) {
  if (area.villageIndex < 0) return '请选择所在村（社区）';
  if (!form.name.trim()) return '请填写申请人姓名';
  if (!form.id_number.trim()) return '请填写身份证号';
  if (!form.phone.trim()) return '请填写手机号';
  if (!form.reason.trim()) return '请填写申请理由';
  if (!photoIds.length) return '请至少上传一张证件照片';
  return null;
}

module.exports = { TYPES, emptyForm, areaState, applicationBody, missing };
