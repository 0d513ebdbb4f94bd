"""The notice to the applicant as a printable page (A4, Chinese).

Every value from the data is escaped: a business scope is text a clerk typed
and must never become markup.
"""

from __future__ import annotations

from html import escape

from ecips_coordination.schemas import RegistrationNotice

_STYLE = """
@page { size: A4; margin: 20mm 18mm; }
body { font-family: "Noto Serif CJK SC", "Songti SC", "SimSun", serif; color: #000;
       max-width: 180mm; margin: 0 auto; padding: 12mm 0; font-size: 12pt; line-height: 1.7; }
h1 { text-align: center; font-size: 20pt; letter-spacing: 0.2em; margin: 0 0 6mm; }
.meta { width: 100%; border-collapse: collapse; margin-bottom: 5mm; }
.meta th { text-align: left; font-weight: normal; width: 30mm; vertical-align: top; }
table.items { width: 100%; border-collapse: collapse; margin: 4mm 0; font-size: 10.5pt; }
table.items th, table.items td { border: 1px solid #000; padding: 1.5mm 2mm; vertical-align: top; }
table.items th { background: #eee; }
.none { border: 1px solid #000; padding: 4mm; text-align: center; }
.basis, .footer { font-size: 10pt; }
.sign { margin-top: 14mm; text-align: right; }
.actions { text-align: center; margin-top: 8mm; }
@media print { .actions { display: none; } body { padding: 0; } }
"""


def _text(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_notice(notice: RegistrationNotice) -> str:
    rows = "\n".join(
        "<tr>"
        f"<td>{index}</td>"
        f"<td>{'<br>'.join(_text(t) for t in item.matched_text) or _text(item.activity)}</td>"
        f"<td>{_text(item.approval)}</td>"
        f"<td>{'<br>'.join(_text(n) for n in item.department_names)}</td>"
        f"<td>{_text(item.legal_basis)}</td>"
        "</tr>"
        for index, item in enumerate(notice.items, start=1)
    )
    if notice.items:
        body = (
            f"<p>{_text(notice.text)}</p>"
            '<table class="items"><thead><tr><th>序号</th><th>经营范围中的项目</th>'
            "<th>后置审批事项</th><th>审批部门</th><th>设定依据</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        body = '<p class="none">你单位登记的经营范围不涉及后置审批事项目录所列事项。</p>'
    established = notice.established_on.isoformat() if notice.established_on else ""
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_text(notice.title)} — {_text(notice.enterprise_name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>{_text(notice.title)}</h1>
<table class="meta">
<tr><th>企业名称：</th><td>{_text(notice.enterprise_name)}</td></tr>
<tr><th>统一社会信用代码：</th><td>{_text(notice.uscc)}</td></tr>
<tr><th>登记机关：</th><td>{_text(notice.registration_authority)}</td></tr>
<tr><th>成立日期：</th><td>{_text(established)}</td></tr>
<tr><th>经营范围：</th><td>{_text(notice.business_scope)}</td></tr>
</table>
{body}
<p class="basis">告知依据：{_text(notice.legal_basis)}</p>
<p class="footer">后置审批事项目录版本：{_text(notice.catalogue_version)}；
生成时间：{_text(notice.as_of.isoformat(timespec="seconds"))}</p>
<p class="sign">{_text(notice.registration_authority)}<br>（盖章）</p>
<p class="actions"><button type="button" onclick="window.print()">打印</button></p>
</body>
</html>
"""
