"""Small lookup tables: personas, cities, plans, queues, categories, offers.

These live on the driver and enter expressions as literal arrays (a few hundred values).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    name: str
    weight: float  # default share of customers
    age: tuple[int, int]
    female: float
    tiers: tuple[float, float, float, float]  # city tier 1..4 mix
    business: float  # share of B (business) customers
    activity: float  # contact-volume multiplier
    voice: float  # share of contacts by phone (mid-range; shifts to digital over time)
    app: float  # has the app
    wechat: float  # follows the WeChat account
    plan: tuple[float, ...]  # mix over PLANS
    tenure_months: float  # mean tenure at start
    churn: float  # base monthly churn probability
    giveup: float  # an issue ends unresolved (customer gives up)
    patience_s: float  # mean queue patience before abandoning
    consent: float  # probability of each marketing consent
    response: float  # baseline campaign response probability
    uplift: float  # mean treatment effect on response


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "young_app_native",
        0.18,
        (18, 24),
        0.5,
        (0.40, 0.35, 0.18, 0.07),
        0.0,
        0.9,
        0.20,
        0.95,
        0.85,
        (0.0, 0.35, 0.5, 0.15, 0.0, 0.0),
        16,
        0.018,
        0.10,
        60,
        0.55,
        0.05,
        0.040,
    ),
    Persona(
        "heavy_voice_caller",
        0.10,
        (52, 66),
        0.45,
        (0.20, 0.30, 0.30, 0.20),
        0.0,
        3.2,
        0.85,
        0.30,
        0.40,
        (0.1, 0.5, 0.35, 0.05, 0.0, 0.0),
        72,
        0.012,
        0.14,
        150,
        0.45,
        0.04,
        0.020,
    ),
    Persona(
        "business_account",
        0.08,
        (30, 56),
        0.35,
        (0.50, 0.30, 0.15, 0.05),
        0.95,
        1.6,
        0.60,
        0.60,
        0.60,
        (0.0, 0.0, 0.0, 0.1, 0.3, 0.6),
        48,
        0.006,
        0.08,
        80,
        0.50,
        0.06,
        0.030,
    ),
    Persona(
        "silent_senior",
        0.14,
        (68, 85),
        0.55,
        (0.15, 0.25, 0.30, 0.30),
        0.0,
        0.35,
        0.92,
        0.10,
        0.25,
        (0.55, 0.4, 0.05, 0.0, 0.0, 0.0),
        140,
        0.004,
        0.12,
        240,
        0.30,
        0.02,
        -0.015,
    ),
    Persona(
        "price_sensitive_churner",
        0.15,
        (30, 42),
        0.5,
        (0.25, 0.30, 0.28, 0.17),
        0.0,
        1.1,
        0.50,
        0.75,
        0.70,
        (0.85, 0.15, 0.0, 0.0, 0.0, 0.0),
        10,
        0.035,
        0.18,
        70,
        0.60,
        0.06,
        0.090,
    ),
    Persona(
        "loyal_high_value",
        0.15,
        (40, 56),
        0.45,
        (0.45, 0.35, 0.15, 0.05),
        0.0,
        0.8,
        0.50,
        0.70,
        0.65,
        (0.0, 0.0, 0.0, 0.15, 0.85, 0.0),
        120,
        0.003,
        0.05,
        120,
        0.35,
        0.12,
        0.005,
    ),
    Persona(
        "family_manager",
        0.20,
        (32, 45),
        0.6,
        (0.30, 0.35, 0.22, 0.13),
        0.0,
        1.2,
        0.55,
        0.70,
        0.80,
        (0.0, 0.1, 0.55, 0.35, 0.0, 0.0),
        54,
        0.010,
        0.10,
        100,
        0.50,
        0.07,
        0.045,
    ),
)
PERSONA_NAMES = [p.name for p in PERSONAS]

# (code, monthly fee CNY); the last two are business plans.
PLANS = (
    ("P19", 19.0),
    ("P39", 39.0),
    ("P59", 59.0),
    ("P99", 99.0),
    ("P199", 199.0),
    ("B299", 299.0),
)

# (province, city, tier, 6-digit area code of the ID card, phone area code)
CITIES = (
    ("北京", "北京", 1, "110101", "010"),
    ("上海", "上海", 1, "310101", "021"),
    ("广东", "广州", 1, "440103", "020"),
    ("广东", "深圳", 1, "440303", "0755"),
    ("浙江", "杭州", 2, "330102", "0571"),
    ("江苏", "南京", 2, "320102", "025"),
    ("四川", "成都", 2, "510104", "028"),
    ("湖北", "武汉", 2, "420102", "027"),
    ("陕西", "西安", 2, "610102", "029"),
    ("重庆", "重庆", 2, "500101", "023"),
    ("江苏", "苏州", 2, "320505", "0512"),
    ("天津", "天津", 2, "120101", "022"),
    ("山东", "济南", 3, "370102", "0531"),
    ("河南", "郑州", 3, "410102", "0371"),
    ("湖南", "长沙", 3, "430102", "0731"),
    ("福建", "福州", 3, "350102", "0591"),
    ("安徽", "合肥", 3, "340102", "0551"),
    ("云南", "昆明", 3, "530102", "0871"),
    ("广西", "南宁", 3, "450102", "0771"),
    ("江西", "南昌", 3, "360102", "0791"),
    ("河北", "保定", 4, "130602", "0312"),
    ("广东", "湛江", 4, "440802", "0759"),
    ("湖南", "衡阳", 4, "430405", "0734"),
    ("河南", "洛阳", 4, "410302", "0379"),
    ("四川", "绵阳", 4, "510703", "0816"),
    ("甘肃", "天水", 4, "620502", "0938"),
)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国文辉鹏"

OCCUPATIONS = (
    "student",
    "office_worker",
    "engineer",
    "teacher",
    "self_employed",
    "manager",
    "worker",
    "farmer",
    "retired",
    "civil_servant",
    "medical",
    "sales",
)
# occupation mix per persona (same order as PERSONAS)
OCCUPATION_MIX = (
    (5, 4, 3, 1, 1, 0, 2, 0, 0, 1, 1, 2),
    (0, 2, 1, 1, 3, 1, 3, 2, 2, 1, 1, 2),
    (0, 1, 1, 0, 4, 5, 0, 0, 0, 0, 0, 3),
    (0, 0, 0, 0, 0, 0, 1, 2, 9, 0, 0, 0),
    (2, 4, 1, 1, 2, 0, 4, 1, 0, 0, 1, 3),
    (0, 2, 3, 2, 1, 4, 0, 0, 1, 2, 2, 1),
    (0, 3, 2, 3, 2, 1, 2, 1, 0, 2, 2, 2),
)
INDUSTRIES = (
    "retail",
    "logistics",
    "manufacturing",
    "it_services",
    "finance",
    "catering",
    "education",
    "healthcare",
    "construction",
)

CATEGORIES = (
    "billing",
    "technical",
    "plan_change",
    "account",
    "activation",
    "roaming",
    "complaint",
    "other",
)
CATEGORY_MIX = (0.26, 0.24, 0.14, 0.10, 0.06, 0.05, 0.05, 0.10)
# IVR self-service completion probability per category
SELF_SERVICE = (0.30, 0.10, 0.25, 0.20, 0.15, 0.30, 0.0, 0.15)

QUEUES = ("Q_BILLING", "Q_TECH", "Q_SALES", "Q_ACCOUNT", "Q_GENERAL", "Q_VIP", "Q_BUSINESS")
CATEGORY_QUEUE = (0, 1, 2, 3, 3, 4, 4, 4)
SKILLS = ("billing_cn", "tech_l1", "sales_cn", "account_cn", "general_cn", "vip", "b2b")
QUEUE_WAIT_S = (60.0, 90.0, 45.0, 50.0, 70.0, 15.0, 30.0)

HOTLINES = ("10086", "4008100100", "95188")
DIGITAL_CHANNELS = ("app", "wechat", "web", "chatbot", "online_agent")
PAGES = (
    "home",
    "bill",
    "usage",
    "plan",
    "offers",
    "payment",
    "help",
    "faq",
    "chat",
    "settings",
    "cancel",
)
IVR_MENUS = ("1", "2", "3", "4", "9")

OFFERS = (  # (offer, channel, response multiplier, uplift multiplier)
    ("5G_UPGRADE", "call", 1.0, 1.0),
    ("DATA_BOOST", "sms", 1.3, 0.7),
    ("RETENTION_DISCOUNT", "call", 0.8, 1.6),
    ("FAMILY_BUNDLE", "push", 1.0, 1.2),
    ("VIP_CARE", "call", 0.7, 0.6),
    ("APP_COUPON", "push", 1.5, 0.9),
)

# intraday profile (hour 0..23): voice peaks mid-morning and early afternoon,
# digital peaks in the evening.
VOICE_HOURS = (
    0.2,
    0.1,
    0.05,
    0.05,
    0.05,
    0.1,
    0.4,
    1.2,
    3.0,
    5.5,
    6.5,
    6.0,
    4.0,
    4.5,
    5.8,
    5.5,
    5.0,
    4.2,
    3.0,
    2.5,
    2.2,
    1.8,
    1.0,
    0.5,
)
DIGITAL_HOURS = (
    0.8,
    0.5,
    0.3,
    0.2,
    0.2,
    0.3,
    0.8,
    1.8,
    2.8,
    3.2,
    3.4,
    3.5,
    3.8,
    3.4,
    3.2,
    3.2,
    3.3,
    3.5,
    3.8,
    4.3,
    5.0,
    5.4,
    4.5,
    2.2,
)
