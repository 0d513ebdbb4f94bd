// Chinese wording for the API's stable codes. Codes missing here are shown with the
// server's own message, so a new code is never hidden.

export const SCOPE_LABELS = {
  "records:write": "报送、更正和撤销本部门的记录",
  "tasks:handle": "办理本部门的双告知和联合惩戒任务",
  "reports:read": "查看所有部门的报送考核统计",
  "ledger:read": "查询法人库完整数据",
  "rules:admin": "维护联合惩戒措施目录",
  "changes:read": "订阅变更数据（系统之间）",
};

export const ERROR_LABELS = {
  required: "必填，请填写",
  invalid_length: "长度不对",
  invalid_character: "含有不允许的字符",
  invalid_org_code_check: "组织机构代码校验码（第17位）不对",
  invalid_check_character: "校验码（第18位）不对",
  invalid_check_digit: "校验位不对",
  unknown_field: "不认识的字段",
  control_character: "含有控制字符（请删除不可见字符）",
  blank: "不能只有空格",
  too_long: "内容太长",
  too_short: "内容太短",
  too_large: "数值太大",
  too_small: "数值太小",
  too_many_items: "项目太多",
  too_few_items: "至少选择或填写一项",
  duplicate_items: "有重复的项目",
  not_allowed: "不是允许的取值",
  not_a_string: "应为文字",
  not_an_integer: "应为整数",
  not_a_number: "应为数字",
  not_a_boolean: "应为“是”或“否”",
  not_an_object: "格式不对",
  not_a_list: "应为列表",
  invalid_type: "类型不对",
  invalid_date: "不是有效日期（格式 年-月-日）",
  invalid_email: "不是有效的电子邮箱",
  invalid_format: "格式不对",
  invalid_amount: "金额只能是数字，可带小数点",
  negative_amount: "金额不能为负数",
  date_in_future: "日期不能晚于今天",
  date_order: "日期先后顺序不对",
  name_mismatch: "名称与法人库登记的名称不一致",
  former_name: "这是企业的曾用名，已按现名称归档",
  unknown_category: "未知的记录类别",
  category_not_permitted: "本部门不能报送这一类记录",
  period_in_future: "这个月份还没有开始",
  invalid_json: "内容不是有效的 JSON",
  invalid_text: "含有无法识别的字符",
  malformed_csv: "CSV 文件格式有误",
  malformed_xlsx: "Excel 文件无法读取",
  unreadable_encoding: "文件编码无法识别（请另存为 UTF-8 或 GB18030）",
  empty_file: "文件是空的",
  unknown_column: "有模板中没有的列",
  missing_column: "缺少模板中的必填列",
  duplicate_column: "有重复的列",
  too_many_cells: "这一行的单元格比表头多",
  unreadable_row: "这一行无法读取",
  category_mismatch: "这一行的类别与所选类别不一致",
  record_revoked: "该记录已撤销，不能再更正",
  enterprise_not_active: "企业已注销或吊销",
  payload_too_large: "文件或内容太大",
  unsupported_format: "不支持的文件格式（请用 CSV、XLSX 或 NDJSON）",
  forwarding_rejected: "许可信息报送被拒绝",
  task_done: "任务已办结，不能再修改",
};

export const RECORD_STATUS = { accepted: "已受理", revoked: "已撤销" };
export const BATCH_STATUS = { queued: "排队中", processing: "处理中", done: "已处理完", failed: "处理失败" };
export const TASK_TYPES = { double_notification: "双告知", joint_punishment: "联合惩戒" };
export const TASK_ACTIONS = { notify: "审批告知", apply: "实施惩戒", release: "解除惩戒" };
export const TASK_STATUS = { open: "待签收", claimed: "已签收", done: "已办结" };
export const TASK_TRIGGERS = { registration: "新设立登记", scope_change: "经营范围变更" };

// Which outcomes fit which task (the server checks the same).
export const OUTCOMES = {
  notify: [
    ["license_granted", "已核发许可"],
    ["license_refused", "不予许可"],
    ["not_engaged", "未从事该经营活动"],
    ["under_supervision", "已纳入日常监管"],
  ],
  apply: [
    ["measure_applied", "已实施惩戒措施"],
    ["not_applicable", "不适用"],
    ["no_matching_case", "本部门无相关业务"],
  ],
  release: [["restriction_lifted", "已解除限制"]],
};

export const FINDINGS = { late: "迟报", incomplete: "漏报", inaccurate: "不准确" };

// Codes whose Chinese wording says it all: the server's (English) message adds nothing.
const SELF_EXPLANATORY = new Set([
  "required", "blank", "control_character", "unknown_field", "invalid_date", "date_in_future",
  "invalid_email", "negative_amount", "invalid_amount", "not_an_integer", "not_a_number",
]);

export function errorLabel(code, fallback) {
  return ERROR_LABELS[code] || fallback || code;
}

/** The Chinese wording, with the server's message when it tells more (which value, what limit). */
export function errorText(code, message) {
  const label = errorLabel(code, message);
  if (!message || label === message || SELF_EXPLANATORY.has(code)) return label;
  return `${label}（${message}）`;
}

// How a rejection reason reads in a report (rows already rejected, not a form to fix).
const REASON_LABELS = { required: "缺少必填项", unknown_field: "有多余的字段", not_allowed: "取值不在允许范围内" };

export function reasonLabel(code) {
  return REASON_LABELS[code] || errorLabel(code, code);
}
