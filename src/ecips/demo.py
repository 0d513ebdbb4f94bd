"""Realistic demo data: Chongqing enterprises and the records departments
produce about them, in the shape ingest accepts. Deterministic by seed and
fast enough for a million enterprises.

Output: one NDJSON file per submitting department (each line a
``POST /v1/records`` body), so each file is one department's batch.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

from ecips_common.identifiers import USCC_ALPHABET, make_registration_number, make_uscc

DISTRICTS: dict[str, str] = {
    "500101": "万州区",
    "500102": "涪陵区",
    "500103": "渝中区",
    "500104": "大渡口区",
    "500105": "江北区",
    "500106": "沙坪坝区",
    "500107": "九龙坡区",
    "500108": "南岸区",
    "500109": "北碚区",
    "500110": "綦江区",
    "500111": "大足区",
    "500112": "渝北区",
    "500113": "巴南区",
    "500114": "黔江区",
    "500115": "长寿区",
    "500116": "江津区",
    "500117": "合川区",
    "500118": "永川区",
    "500119": "南川区",
    "500120": "璧山区",
    "500151": "铜梁区",
    "500152": "潼南区",
    "500153": "荣昌区",
    "500154": "开州区",
    "500155": "梁平区",
    "500156": "武隆区",
    "500229": "城口县",
    "500230": "丰都县",
    "500231": "垫江县",
    "500233": "忠县",
    "500235": "云阳县",
    "500236": "奉节县",
    "500237": "巫山县",
    "500238": "巫溪县",
    "500240": "石柱土家族自治县",
    "500241": "秀山土家族苗族自治县",
    "500242": "酉阳土家族苗族自治县",
    "500243": "彭水苗族土家族自治县",
}
# Where enterprises are registered: the core districts far more than the counties.
DISTRICT_WEIGHTS = [
    6
    if code in ("500103", "500105", "500106", "500107", "500108", "500112")
    else 2
    if code.startswith("5001")
    else 1
    for code in DISTRICTS
]

TRADE_NAME_CHARS = (
    "渝巴山城江嘉陵川鑫泰华瑞丰源盛达隆兴宏远金信诚合恒通海天新宇博创智聚和安康美佳汇德顺福祥"
    "荣昌益永长大中东南西北星光明科力卓越腾飞锦绣群峰雅晨曦朗润泽沐鸿运誉豪驰骏翔凯旭升"
)

# (industry in the name, business scope, enterprise type weight key)
INDUSTRIES: list[tuple[str, str]] = [
    ("科技", "一般项目：软件开发；信息技术咨询服务；计算机系统服务；数据处理服务"),
    ("建材", "一般项目：建筑材料销售；五金产品零售；金属材料销售"),
    ("餐饮管理", "许可项目：餐饮服务；食品经营。一般项目：餐饮管理；外卖递送服务"),
    ("火锅", "许可项目：餐饮服务；食品经营（销售散装食品）。一般项目：餐饮管理"),
    (
        "物流",
        "许可项目：道路货物运输（不含危险货物）。一般项目：普通货物仓储服务；国内货物运输代理",
    ),
    ("商贸", "一般项目：日用百货销售；服装服饰零售；家用电器销售；食品销售（仅销售预包装食品）"),
    ("建筑工程", "许可项目：建设工程施工；住宅室内装饰装修。一般项目：园林绿化工程施工"),
    (
        "电子商务",
        "许可项目：第二类增值电信业务；互联网信息服务。一般项目：互联网销售（除销售需要许可的商品）",
    ),
    ("农业开发", "许可项目：农作物种子经营；农药零售。一般项目：谷物种植；蔬菜种植；水果种植"),
    (
        "医药",
        "许可项目：药品零售；第三类医疗器械经营。一般项目：第二类医疗器械销售；保健食品（预包装）销售",
    ),
    (
        "文化传媒",
        "许可项目：营业性演出；广播电视节目制作经营。一般项目：组织文化艺术交流活动；广告设计、代理",
    ),
    ("旅游", "许可项目：旅行社业务。一般项目：旅游开发项目策划咨询；票务代理服务"),
    (
        "人力资源",
        "许可项目：人力资源服务（不含职业中介活动、劳务派遣服务）；劳务派遣服务。一般项目：企业管理咨询",
    ),
    (
        "汽车服务",
        "许可项目：机动车检验检测服务。一般项目：汽车零配件零售；机动车修理和维护；洗车服务",
    ),
    ("能源", "许可项目：燃气经营；成品油零售（不含危险化学品）。一般项目：新兴能源技术研发"),
    ("化工", "许可项目：危险化学品经营。一般项目：化工产品销售（不含许可类化工产品）"),
    (
        "酒店管理",
        "许可项目：住宿服务；餐饮服务；公共场所卫生（美容美发、游泳场所）。一般项目：酒店管理",
    ),
    ("教育咨询", "一般项目：教育咨询服务（不含涉许可审批的教育培训活动）；组织文化艺术交流活动"),
    (
        "机械制造",
        "许可项目：特种设备制造；特种设备安装改造修理。一般项目：通用设备制造（不含特种设备制造）",
    ),
    ("环保", "许可项目：危险废物经营。一般项目：环保咨询服务；固体废物治理"),
    ("房地产开发", "许可项目：房地产开发经营。一般项目：物业管理；住房租赁"),
    ("快递", "许可项目：快递服务。一般项目：国内货物运输代理；装卸搬运"),
    ("典当", "许可项目：典当。一般项目：二手日用百货销售"),
    ("拍卖", "许可项目：拍卖业务。一般项目：艺术品代理；文物文化用品销售（不含文物）"),
]
FORMS = [
    ("有限公司", "有限责任公司（自然人投资或控股）", 80),
    ("有限责任公司", "有限责任公司（自然人独资）", 12),
    ("股份有限公司", "股份有限公司（非上市、自然人投资或控股）", 3),
    ("商行", "个人独资企业", 5),
]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡"
    "余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯"
    "龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉萍红建国文辉鹏燕斌宇浩凯健俊帆"
    "帅旭宁欣婷雪琳晶莉林"
)
STREETS = [
    "解放碑民族路",
    "上清寺路",
    "观音桥步行街",
    "三峡广场",
    "杨家坪正街",
    "南坪西路",
    "北城天街",
    "两路口",
    "大坪正街",
    "石桥铺",
    "龙头寺",
    "李家沱",
    "鱼洞",
    "西永大道",
]
PENALTY_CASES = [
    ("食品安全", "经营超过保质期的食品原料", ["警告", "罚款"]),
    ("产品质量", "销售不合格产品", ["罚款", "没收违法所得"]),
    ("广告", "发布虚假广告", ["罚款"]),
    ("价格", "不明码标价", ["警告"]),
    ("安全生产", "未按规定开展安全生产教育和培训", ["罚款"]),
    ("环境保护", "超标排放大气污染物", ["罚款", "责令停产停业"]),
    ("消防", "占用疏散通道", ["警告", "罚款"]),
    ("税务", "未按期申报纳税", ["罚款"]),
]
PENALTY_DEPARTMENTS = [
    ("CQ-SAMR", "重庆市市场监督管理局", 50),
    ("CQ-ECOENV", "重庆市生态环境局", 10),
    ("CQ-EMERGENCY", "重庆市应急管理局", 10),
    ("CQ-TAX", "国家税务总局重庆市税务局", 10),
    ("CQ-TRANSPORT", "重庆市交通运输委员会", 8),
    ("CQ-HEALTH", "重庆市卫生健康委员会", 6),
    ("CQ-HURD", "重庆市住房和城乡建设委员会", 6),
]
LICENSE_KINDS = [
    ("CQ-SAMR", "食品经营许可证", "JY150", "重庆市市场监督管理局"),
    ("CQ-MPA", "药品经营许可证", "渝AA023", "重庆市药品监督管理局"),
    ("CQ-TRANSPORT", "道路运输经营许可证", "渝交运管许可", "重庆市交通运输委员会"),
    ("CQ-HURD", "建筑业企业资质证书", "D350", "重庆市住房和城乡建设委员会"),
    ("CQ-CULTURE", "旅行社业务经营许可证", "L-CQ", "重庆市文化和旅游发展委员会"),
    ("CQ-EMERGENCY", "危险化学品经营许可证", "渝应急经字", "重庆市应急管理局"),
]

# Records per enterprise beyond its registration, by category: mean counts
# loosely following the national publicity system's section sizes.
RECORD_MIX: list[tuple[str, float]] = [
    ("annual_report", 0.60),
    ("administrative_license", 0.35),
    ("administrative_inspection", 0.20),
    ("administrative_penalty", 0.08),
    ("trademark_registration", 0.05),
    ("chattel_mortgage", 0.03),
    ("abnormal_operation_listing", 0.03),
    ("small_micro_support", 0.03),
    ("registration_change", 0.06),
    ("equity_pledge", 0.02),
    ("commendation", 0.02),
    ("consumer_complaint", 0.02),
    ("judicial_assistance", 0.01),
    ("tax_arrears", 0.01),
    ("judgment", 0.01),
    ("serious_illegal_listing", 0.004),
    ("deregistration", 0.01),
]


@dataclass(frozen=True, slots=True)
class Enterprise:
    uscc: str
    registration_number: str | None
    name: str
    legal_representative: str
    enterprise_type: str
    capital_yuan: int
    established_on: date
    address: str
    business_scope: str
    division: str
    authority: str


@dataclass(frozen=True, slots=True)
class DemoRecord:
    department: str
    body: dict[str, Any]


def _money(value: int | float) -> dict[str, str]:
    return {
        "value": f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}",
        "currency": "CNY",
    }


class DemoGenerator:
    def __init__(self, seed: int = 2016, *, today: date | None = None) -> None:
        self._rng = random.Random(seed)
        self._today = today or date(2026, 11, 1)
        self._usccs: set[str] = set()
        self._names: set[str] = set()
        self._serial = 0

    def _date_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self._rng.randrange(max(1, (end - start).days)))

    def _person(self) -> str:
        rng = self._rng
        given = "".join(rng.choices(GIVEN_CHARS, k=rng.choice((1, 2, 2))))
        return rng.choice(SURNAMES) + given

    def enterprise(self) -> Enterprise:
        rng = self._rng
        division = rng.choices(list(DISTRICTS), weights=DISTRICT_WEIGHTS)[0]
        while True:
            uscc = make_uscc(org_body="".join(rng.choices(USCC_ALPHABET, k=8)), division=division)
            if uscc not in self._usccs:
                self._usccs.add(uscc)
                break
        industry, scope = rng.choice(INDUSTRIES)
        suffix, enterprise_type, _ = rng.choices(FORMS, weights=[f[2] for f in FORMS])[0]
        district = DISTRICTS[division]
        while True:
            trade = "".join(rng.choices(TRADE_NAME_CHARS, k=rng.choice((2, 2, 3))))
            name = rng.choice(
                (f"重庆{trade}{industry}{suffix}", f"重庆市{district}{trade}{industry}{suffix}")
            )
            if name not in self._names:
                self._names.add(name)
                break
        established = self._date_between(date(1998, 1, 1), self._today - timedelta(days=30))
        self._serial += 1
        old_number = (
            make_registration_number(f"{division}{self._serial % 10**8:08d}")
            if established < date(2015, 10, 1)
            else None
        )
        return Enterprise(
            uscc=uscc,
            registration_number=old_number,
            name=name,
            legal_representative=self._person(),
            enterprise_type=enterprise_type,
            capital_yuan=rng.choice((10, 30, 50, 100, 200, 500, 1000, 5000)) * 10_000,
            established_on=established,
            address=f"重庆市{district}{rng.choice(STREETS)}{rng.randint(1, 999)}号",
            business_scope=scope,
            division=division,
            authority=f"重庆市{district}市场监督管理局",
        )

    def _envelope(
        self, e: Enterprise, category: str, source_id: str, on: date, data: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "category": category,
            "source_id": source_id,
            "uscc": e.uscc,
            "enterprise_name": e.name,
            "occurred_on": on.isoformat(),
            "data": data,
        }

    def registration(self, e: Enterprise) -> DemoRecord:
        data: dict[str, Any] = {
            "name": e.name,
            "legal_representative": e.legal_representative,
            "enterprise_type": e.enterprise_type,
            "registered_capital": _money(e.capital_yuan),
            "established_on": e.established_on.isoformat(),
            "address": e.address,
            "business_scope": e.business_scope,
            "registration_authority": e.authority,
        }
        if e.registration_number:
            data["registration_number"] = e.registration_number
        return DemoRecord(
            "CQ-SAMR", self._envelope(e, "registration", f"设立-{e.uscc}", e.established_on, data)
        )

    def annual_report(self, e: Enterprise, n: int) -> DemoRecord | None:
        """One of the enterprise's annual reports (None if it has none to file yet)."""
        return self._record(e, "annual_report", n)

    def records(self, e: Enterprise) -> Iterator[DemoRecord]:
        yield self.registration(e)
        for category, mean in RECORD_MIX:
            count = int(mean) + (1 if self._rng.random() < mean - int(mean) else 0)
            for n in range(count):
                record = self._record(e, category, n)
                if record is not None:
                    yield record

    def _record(self, e: Enterprise, category: str, n: int) -> DemoRecord | None:
        rng = self._rng
        on = self._date_between(max(e.established_on, date(2014, 1, 1)), self._today)
        tag = f"{e.uscc[-8:]}{n}"
        if category == "annual_report":
            year = max(e.established_on.year, on.year - 1)
            if year >= self._today.year:
                return None
            submitted = date(year + 1, rng.randint(1, 6), rng.randint(1, 28))
            if submitted > self._today:
                return None
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"年报-{year}-{e.uscc}",
                    submitted,
                    {
                        "report_year": year,
                        "submitted_on": submitted.isoformat(),
                        "employees": rng.randint(1, 300),
                    },
                ),
            )
        if category == "administrative_license":
            dept, title, prefix, authority = rng.choice(LICENSE_KINDS)
            number = f"{prefix}{e.division}{rng.randint(10**7, 10**8 - 1)}"
            return DemoRecord(
                dept,
                self._envelope(
                    e,
                    category,
                    f"许可-{number}",
                    on,
                    {
                        "decision_number": (
                            f"{authority[:4]}许〔{on.year}〕{rng.randint(1, 9999)}号"
                        ),
                        "authority": authority,
                        "decided_on": on.isoformat(),
                        "license_kind": "普通",
                        "license_name": title,
                        "license_number": number,
                        "content": title.removesuffix("证"),
                        "valid_from": on.isoformat(),
                        "valid_to": (on + timedelta(days=365 * 5)).isoformat(),
                        "state": "有效",
                    },
                ),
            )
        if category == "administrative_inspection":
            result = rng.choices(
                [
                    "未发现问题",
                    "发现问题已责令改正",
                    "未按规定公示年报",
                    "通过登记的住所（经营场所）无法联系",
                ],
                weights=[80, 12, 5, 3],
            )[0]
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"检查-{on.year}-{tag}",
                    on,
                    {
                        "inspection_number": f"CQ{on.year}{tag}",
                        "authority": e.authority,
                        "inspected_on": on.isoformat(),
                        "kind": rng.choice(["定向抽查", "不定向抽查"]),
                        "result": result,
                    },
                ),
            )
        if category == "administrative_penalty":
            dept, authority, _ = rng.choices(
                PENALTY_DEPARTMENTS, weights=[d[2] for d in PENALTY_DEPARTMENTS]
            )[0]
            violation, facts, kinds = rng.choice(PENALTY_CASES)
            number = f"渝{authority[3:5]}罚〔{on.year}〕{rng.randint(1, 99999)}号"
            data: dict[str, Any] = {
                "decision_number": number,
                "authority": authority,
                "violation_type": violation,
                "facts": facts,
                "penalty_kinds": kinds,
                "content": "、".join(kinds),
                "decided_on": on.isoformat(),
            }
            if "罚款" in kinds:
                data["fine"] = _money(rng.choice((2000, 5000, 10000, 30000, 50000, 200000)))
            return DemoRecord(dept, self._envelope(e, category, f"{number}-{tag}", on, data))
        if category in ("abnormal_operation_listing", "serious_illegal_listing"):
            kind = "异" if category.startswith("abnormal") else "严"
            number = f"{e.authority[:5]}{kind}列〔{on.year}〕{tag}号"
            reason = (
                "未依照规定报送年度报告"
                if category.startswith("abnormal")
                else "被列入经营异常名录届满3年仍未履行相关义务"
            )
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    number,
                    on,
                    {
                        "decision_number": number,
                        "authority": e.authority,
                        "decided_on": on.isoformat(),
                        "reason": reason,
                    },
                ),
            )
        if category == "trademark_registration":
            number = str(rng.randint(10**7, 10**8 - 1))
            return DemoRecord(
                "CQ-IP",
                self._envelope(
                    e,
                    category,
                    f"商标-{number}",
                    on,
                    {
                        "registration_number": number,
                        "mark": e.name[2:4] if e.name.startswith("重庆") else e.name[:2],
                        "classes": sorted(rng.sample(range(1, 46), rng.randint(1, 3))),
                        "registered_on": on.isoformat(),
                    },
                ),
            )
        if category == "chattel_mortgage":
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"抵押-{tag}",
                    on,
                    {
                        "registration_number": f"渝{e.division}{on.year}{tag}",
                        "registered_on": on.isoformat(),
                        "mortgagee": rng.choice(
                            [
                                "重庆农村商业银行股份有限公司",
                                "中国建设银行股份有限公司重庆分行",
                                "重庆银行股份有限公司",
                            ]
                        ),
                        "secured_amount": _money(rng.choice((50, 100, 300, 800)) * 10_000),
                        "collateral": "生产设备一批",
                        "state": "有效",
                    },
                ),
            )
        if category == "small_micro_support":
            return DemoRecord(
                "CQ-ECONINFO",
                self._envelope(
                    e,
                    category,
                    f"扶持-{tag}",
                    on,
                    {
                        "policy": "小微企业贷款贴息",
                        "authority": "重庆市经济和信息化委员会",
                        "granted_on": on.isoformat(),
                        "amount": _money(rng.choice((5, 10, 20)) * 10_000),
                    },
                ),
            )
        if category == "registration_change":
            new_address = (
                f"重庆市{DISTRICTS[e.division]}{rng.choice(STREETS)}{rng.randint(1, 999)}号"
            )
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"变更-{tag}",
                    on,
                    {
                        "changed_on": on.isoformat(),
                        "registration_authority": e.authority,
                        "changes": [{"item": "address", "before": e.address, "after": new_address}],
                    },
                ),
            )
        if category == "equity_pledge":
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"出质-{tag}",
                    on,
                    {
                        "registration_number": f"出质{e.division}{tag}",
                        "registered_on": on.isoformat(),
                        "pledgor": e.legal_representative,
                        "pledgee": "重庆三峡担保集团股份有限公司",
                        "amount": _money(rng.choice((10, 50, 100)) * 10_000),
                        "state": "有效",
                    },
                ),
            )
        if category == "commendation":
            return DemoRecord(
                "CQ-NDRC",
                self._envelope(
                    e,
                    category,
                    f"表彰-{tag}",
                    on,
                    {
                        "decision_number": f"渝发改〔{on.year}〕{rng.randint(1, 999)}号",
                        "authority": "重庆市发展和改革委员会",
                        "decided_on": on.isoformat(),
                        "title": rng.choice(
                            ["重庆市诚信示范企业", "守合同重信用企业", "重庆市专精特新企业"]
                        ),
                        "level": "市级",
                    },
                ),
            )
        if category == "consumer_complaint":
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"投诉-{tag}",
                    on,
                    {
                        "complaint_number": f"12315{on.year}{tag}",
                        "received_on": on.isoformat(),
                        "summary": rng.choice(["商品质量问题", "虚假宣传", "拒不退款"]),
                        "outcome": "调解成功",
                    },
                ),
            )
        if category == "judicial_assistance":
            return DemoRecord(
                "CQ-COURT",
                self._envelope(
                    e,
                    category,
                    f"协助-{tag}",
                    on,
                    {
                        "notice_number": (
                            f"（{on.year}）渝0{rng.randint(101, 199)}执{rng.randint(1, 9999)}号"
                        ),
                        "court": "重庆市渝中区人民法院",
                        "kind": "股权冻结",
                        "subject_person": e.legal_representative,
                        "amount": _money(rng.choice((10, 50, 200)) * 10_000),
                        "from_date": on.isoformat(),
                        "to_date": (on + timedelta(days=3 * 365)).isoformat(),
                    },
                ),
            )
        if category == "tax_arrears":
            return DemoRecord(
                "CQ-TAX",
                self._envelope(
                    e,
                    category,
                    f"欠税-{tag}",
                    on,
                    {
                        "tax_type": rng.choice(["增值税", "企业所得税", "城市维护建设税"]),
                        "amount": _money(rng.randint(1, 500) * 1000),
                        "as_of": on.isoformat(),
                        "authority": "国家税务总局重庆市税务局",
                    },
                ),
            )
        if category == "judgment":
            return DemoRecord(
                "CQ-COURT",
                self._envelope(
                    e,
                    category,
                    f"判决-{tag}",
                    on,
                    {
                        "case_number": f"（{on.year}）渝01民初{rng.randint(1, 9999)}号",
                        "court": "重庆市第一中级人民法院",
                        "decided_on": on.isoformat(),
                        "kind": "判决",
                        "summary": "买卖合同纠纷",
                        "amount": _money(rng.randint(1, 300) * 10_000),
                    },
                ),
            )
        if category == "deregistration":
            return DemoRecord(
                "CQ-SAMR",
                self._envelope(
                    e,
                    category,
                    f"注销-{e.uscc}",
                    on,
                    {
                        "deregistered_on": on.isoformat(),
                        "kind": "deregistered",
                        "reason": "决议解散",
                        "decision_number": f"{e.authority[:5]}销字〔{on.year}〕{tag}号",
                        "authority": e.authority,
                        "decided_on": on.isoformat(),
                    },
                ),
            )
        return None


def generate(
    out_dir: Path,
    *,
    enterprises: int,
    max_records: int | None = None,
    seed: int = 2016,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write one NDJSON file per department; returns records per department."""
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = DemoGenerator(seed)
    files: dict[str, IO[str]] = {}
    counts: dict[str, int] = {}
    total = 0
    try:
        for n in range(enterprises):
            enterprise = generator.enterprise()
            for record in generator.records(enterprise):
                if max_records is not None and total >= max_records:
                    break
                out = files.get(record.department)
                if out is None:
                    out = files[record.department] = (out_dir / f"{record.department}.ndjson").open(
                        "w", encoding="utf-8"
                    )
                out.write(json.dumps(record.body, ensure_ascii=False, separators=(",", ":")) + "\n")
                counts[record.department] = counts.get(record.department, 0) + 1
                total += 1
            if progress is not None and (n + 1) % 10_000 == 0:
                progress(n + 1, total)
    finally:
        for out in files.values():
            out.close()
    return counts


def print_progress(total_enterprises: int) -> Callable[[int, int], None]:
    started = time.monotonic()

    def report(done: int, records: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-9)
        print(
            f"\r  {done:,}/{total_enterprises:,} enterprises, {records:,} records "
            f"({rate:,.0f} enterprises/s)",
            end="",
            file=sys.stderr,
            flush=True,
        )

    return report


def department_files(directory: Path) -> list[Path]:
    """The registration authority's file first, so records find their enterprises at once."""
    return sorted(directory.glob("*.ndjson"), key=lambda p: (p.stem != "CQ-SAMR", p.stem))


async def load(
    files: list[Path],
    *,
    ingest_url: str,
    token_for: Callable[[str], str],
    concurrency: int = 16,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Submit every department's file record by record, ``concurrency`` at a
    time. Returns the count of answers per HTTP status."""
    import asyncio

    import httpx

    total = await asyncio.to_thread(lambda: sum(1 for f in files for _ in f.open(encoding="utf-8")))
    statuses: dict[str, int] = {}
    done = 0
    async with httpx.AsyncClient(base_url=ingest_url, timeout=60) as http:
        for path in files:
            headers = {"Authorization": f"Bearer {token_for(path.stem)}"}
            queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=concurrency * 4)

            async def worker(
                headers: dict[str, str] = headers, queue: asyncio.Queue[str | None] = queue
            ) -> None:
                nonlocal done
                while (line := await queue.get()) is not None:
                    response = await http.post(
                        "/v1/records",
                        content=line.encode(),
                        headers={**headers, "Content-Type": "application/json"},
                    )
                    key = str(response.status_code)
                    statuses[key] = statuses.get(key, 0) + 1
                    done += 1
                    if progress is not None and done % 1000 == 0:
                        progress(done, total)

            workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
            with path.open(encoding="utf-8") as lines:
                for line in lines:
                    await queue.put(line)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
    if progress is not None:
        progress(done, total)
    return statuses
