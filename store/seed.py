"""A demo catalog for a Pyongyang shop: categories, products and delivery districts.

The texts fit the handset: English names at most 18 characters and descriptions at most 60,
plain ASCII (so a screen stays in GSM-7's 160 characters); Korean names at most 8 and
descriptions at most 24, Hangul, digits and spaces only (a UCS-2 screen holds 80). Korean
follows the usage in the DPRK (입쌀, 꼬부랑국수, 살결물, 손전지, 려행, 해빛). Prices are won.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from menus import ports
from store.catalog import is_empty
from store.db import Database
from store.errors import StoreError
from store.models import Category, DeliveryZone, Product

# (slug, name_en, name_ko), in menu order.
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("food", "Food", "식료품"),
    ("medicine", "Medicine", "의약품"),
    ("bags", "Bags", "가방"),
    ("cosmetics", "Cosmetics", "화장품"),
    ("clothing", "Clothing", "옷"),
    ("household", "Household", "일용품"),
)

# (category slug, sku, name_en, name_ko, description_en, description_ko, price, stock),
# in menu order within each category. A few run low (1-3) and one is sold out (stock 0),
# so the demo shows both.
# fmt: off
PRODUCTS: tuple[tuple[str, str, str, str, str, str, int, int], ...] = (
    ("food", "FD-CORNNOODLE", "Corn noodles", "강냉이국수",
     "Dried corn noodles, 1 kg bag", "말린 강냉이국수 1키로그람", 4500, 40),
    ("food", "FD-RICE5", "White rice 5 kg", "입쌀 5키로",
     "Polished white rice, 5 kg sack", "흰 입쌀 5키로그람 자루", 28000, 25),
    ("food", "FD-RAMYON", "Instant noodles", "꼬부랑국수",
     "Instant noodle block with soup powder", "즉석 국수와 양념가루", 1200, 120),
    ("food", "FD-SOYPASTE", "Soybean paste", "된장",
     "Fermented soybean paste, 1 kg jar", "발효시킨 된장 1키로그람", 6000, 30),
    ("food", "FD-CHILIPASTE", "Red pepper paste", "고추장",
     "Hot red pepper paste, 500 g jar", "매운 고추장 500그람", 5000, 30),
    ("food", "FD-SOYOIL", "Soybean oil 1 L", "콩기름",
     "Cooking oil pressed from soybeans, 1 litre", "콩으로 짠 식용기름 1리터", 9000, 18),
    ("food", "FD-POLLACK", "Dried pollack", "마른명태",
     "Dried pollack, bundle of 5 fish", "마른명태 5마리 묶음", 15000, 2),
    ("food", "FD-CANDY", "Fruit candy", "과일사탕",
     "Hard fruit candy, 300 g bag", "과일맛 사탕 300그람", 3000, 60),

    ("medicine", "MD-PAINRELIEF", "Pain reliever", "해열진통제",
     "Paracetamol tablets, pack of 20", "해열진통제 20알", 2500, 50),
    ("medicine", "MD-COLD", "Cold medicine", "감기약",
     "Cold and flu tablets, pack of 10", "감기약 10알", 3000, 40),
    ("medicine", "MD-CHONGSIM", "Chongsim pills", "우황청심환",
     "Koryo medicine for the heart, 10 pills", "고려약 우황청심환 10알", 18000, 0),
    ("medicine", "MD-BANDAGE", "Gauze bandage", "붕대",
     "Sterile gauze bandage roll, 5 m", "소독한 붕대 5메터", 1500, 70),
    ("medicine", "MD-PLASTER", "Adhesive plasters", "반창고",
     "Plasters in assorted sizes, 20 pieces", "여러 크기 반창고 20개", 1800, 45),
    ("medicine", "MD-IODINE", "Iodine tincture", "요드팅크",
     "Wound disinfectant, 30 ml bottle", "상처 소독약 30밀리리터", 2000, 35),
    ("medicine", "MD-VITAMINC", "Vitamin C", "비타민씨",
     "Vitamin C tablets, pack of 60", "비타민씨 60알", 7000, 3),
    ("medicine", "MD-EYEDROPS", "Eye drops", "눈약",
     "Soothing drops for tired eyes, 10 ml", "피로한 눈에 넣는 눈약", 2500, 30),

    ("bags", "BG-BACKPACK", "Backpack", "배낭",
     "Canvas backpack, 30 litres", "천으로 만든 배낭 30리터", 25000, 12),
    ("bags", "BG-SCHOOL", "School bag", "학생가방",
     "Sturdy school bag with two straps", "멜빵이 둘인 튼튼한 학생가방", 18000, 20),
    ("bags", "BG-HANDBAG", "Handbag", "손가방",
     "Faux leather handbag with a zip", "지퍼가 달린 인조가죽 손가방", 22000, 8),
    ("bags", "BG-TRAVEL", "Travel bag", "려행가방",
     "Large zip travel bag, 50 litres", "큰 려행가방 50리터", 35000, 6),
    ("bags", "BG-WALLET", "Wallet", "지갑",
     "Folding wallet with a coin pocket", "동전주머니가 있는 지갑", 8000, 25),
    ("bags", "BG-SHOPPER", "Shopping bag", "장바구니",
     "Reusable woven shopping bag", "여러번 쓰는 장바구니", 2500, 50),
    ("bags", "BG-SHOULDER", "Cloth shoulder bag", "천가방",
     "Cotton cloth bag with a shoulder strap", "무명천 어깨가방", 5000, 30),

    ("cosmetics", "CS-TONER", "Bomhyanggi toner", "봄향기살결물",
     "Spring Fragrance skin toner, 120 ml", "봄향기 살결물 120밀리리터", 15000, 14),
    ("cosmetics", "CS-LOTION", "Bomhyanggi lotion", "봄향기물크림",
     "Spring Fragrance moisturising lotion", "봄향기 물크림 120밀리리터", 16000, 10),
    ("cosmetics", "CS-CREAM", "Unhasu face cream", "은하수크림",
     "Unhasu nourishing face cream, 50 g", "은하수 영양크림 50그람", 20000, 2),
    ("cosmetics", "CS-SHAMPOO", "Shampoo", "머리물비누",
     "Hair shampoo, 400 ml bottle", "머리물비누 400밀리리터", 6000, 40),
    ("cosmetics", "CS-FACESOAP", "Face soap", "세수비누",
     "Mild face soap, 100 g bar", "순한 세수비누 100그람", 1500, 80),
    ("cosmetics", "CS-LIPSTICK", "Lipstick", "입술연지",
     "Long lasting red lipstick", "오래가는 붉은 입술연지", 9000, 15),
    ("cosmetics", "CS-SUNCREAM", "Sun cream", "해빛막이크림",
     "Sun protection cream, 50 g", "해빛막이크림 50그람", 12000, 9),
    ("cosmetics", "CS-HANDCREAM", "Hand cream", "손크림",
     "Hand cream for dry skin, 60 g", "마른 피부용 손크림 60그람", 4000, 25),

    ("clothing", "CL-PADDEDCOAT", "Padded winter coat", "솜옷",
     "Warm cotton padded coat for winter", "겨울에 입는 따뜻한 솜옷", 60000, 5),
    ("clothing", "CL-THERMALS", "Thermal underwear", "내의",
     "Long thermal underwear, top and bottom", "웃내의와 아래내의 한벌", 14000, 20),
    ("clothing", "CL-SOCKS", "Cotton socks", "양말",
     "Cotton socks, 3 pairs", "무명 양말 3켤레", 3000, 100),
    ("clothing", "CL-FURHAT", "Fur hat", "털모자",
     "Warm fur hat with ear flaps", "귀덮개가 달린 털모자", 25000, 7),
    ("clothing", "CL-GLOVES", "Knitted gloves", "털장갑",
     "Knitted wool gloves", "털실로 뜬 장갑", 4500, 30),
    ("clothing", "CL-TRACKSUIT", "Tracksuit", "운동복",
     "Tracksuit, jacket and trousers", "운동복 웃옷과 바지", 22000, 12),
    ("clothing", "CL-SNEAKERS", "Canvas sneakers", "운동신발",
     "Canvas sneakers, sizes 230 to 280", "천 운동신발 230부터 280까지", 12000, 15),
    ("clothing", "CL-RAINCOAT", "Raincoat", "비옷",
     "Light plastic raincoat", "가벼운 비닐 비옷", 5000, 1),

    ("household", "HH-LAUNDRYSOAP", "Laundry soap", "빨래비누",
     "Laundry soap, 2 bars", "빨래비누 2장", 2000, 80),
    ("household", "HH-TOOTHBRUSH", "Toothbrush", "치솔",
     "Soft toothbrush", "부드러운 치솔", 800, 150),
    ("household", "HH-TOOTHPASTE", "Toothpaste", "치약",
     "Toothpaste, 150 g tube", "치약 150그람", 2500, 90),
    ("household", "HH-TOWEL", "Towel", "수건",
     "Cotton face towel", "무명 세수수건", 3000, 60),
    ("household", "HH-MATCHES", "Matches", "성냥",
     "Matches, 10 boxes", "성냥 10갑", 1000, 100),
    ("household", "HH-CANDLES", "Candles", "초",
     "Household candles, pack of 6", "집에서 쓰는 초 6자루", 2000, 40),
    ("household", "HH-TORCH", "LED torch", "손전지",
     "Rechargeable LED torch", "충전해 쓰는 손전지", 15000, 3),
    ("household", "HH-BATTERIES", "AA batteries", "건전지",
     "AA batteries, pack of 4", "건전지 4개", 3500, 50),
    ("household", "HH-THERMOS", "Vacuum flask", "보온병",
     "Vacuum flask, 1 litre", "보온병 1리터", 12000, 10),
)
# fmt: on

# (name_en, name_ko, fee): Pyongyang districts, the centre first, nearer ones cheaper.
ZONES: tuple[tuple[str, str, int], ...] = (
    ("Central", "중구역", 1000),
    ("Pothonggang", "보통강구역", 1000),
    ("Moranbong", "모란봉구역", 1500),
    ("Sosong", "서성구역", 1500),
    ("Songyo", "선교구역", 1500),
    ("Tongdaewon", "동대원구역", 1500),
    ("Taedonggang", "대동강구역", 2000),
    ("Mangyongdae", "만경대구역", 2500),
    ("Rangnang", "락랑구역", 3000),
)

# Gaps between positions leave room to slot an item in without renumbering the rest.
_STEP = 10


async def seed(db: Database) -> None:
    """Load the demo catalog; raises StoreError unless the catalog is empty."""
    if not await _load(db):
        raise StoreError("the catalog is not empty; the demo data loads only into an empty one")


async def seed_if_empty(db: Database) -> bool:
    """Load the demo catalog when there is none; True when it did."""
    try:
        return await _load(db)
    except IntegrityError:
        # Another process seeded between our emptiness check and our insert (PostgreSQL).
        return False


async def _load(db: Database) -> bool:
    async with db.write() as session:
        # The check and the load share one transaction, so a half-seeded catalog never shows.
        if not await is_empty(session):
            return False
        categories = {
            slug: Category(slug=slug, name_en=en, name_ko=ko, position=i * _STEP)
            for i, (slug, en, ko) in enumerate(CATEGORIES)
        }
        session.add_all(categories.values())
        await session.flush()  # assigns the category ids the products refer to
        positions: dict[str, int] = {}
        for slug, sku, name_en, name_ko, desc_en, desc_ko, price, stock in PRODUCTS:
            position = positions.get(slug, 0)
            positions[slug] = position + _STEP
            category_id = categories[slug].id
            assert category_id is not None
            session.add(
                Product(
                    sku=sku,
                    category_id=category_id,
                    name_en=name_en,
                    name_ko=name_ko,
                    description_en=desc_en,
                    description_ko=desc_ko,
                    price=price,
                    stock=stock,
                    position=position,
                )
            )
        session.add_all(
            DeliveryZone(name_en=en, name_ko=ko, fee=fee, position=i * _STEP)
            for i, (en, ko, fee) in enumerate(ZONES)
        )
        return True


def demo_catalog(version: str = "demo") -> ports.Catalog:
    """The demo catalog as the menus see it, without a database (``okryu flow check``)."""
    categories = tuple(
        ports.Category(i + 1, en, ko, i * _STEP) for i, (_, en, ko) in enumerate(CATEGORIES)
    )
    ids = {slug: i + 1 for i, (slug, _, _) in enumerate(CATEGORIES)}
    products = {
        n + 1: ports.Product(n + 1, sku, ids[slug], en, ko, desc_en, desc_ko, price, stock)
        for n, (slug, sku, en, ko, desc_en, desc_ko, price, stock) in enumerate(PRODUCTS)
    }
    by_category: dict[int, list[int]] = {}
    for product in products.values():
        by_category.setdefault(product.category_id, []).append(product.id)
    zones = tuple(ports.Zone(i + 1, en, ko, fee) for i, (en, ko, fee) in enumerate(ZONES))
    return ports.Catalog(
        version, categories, products, {k: tuple(v) for k, v in by_category.items()}, zones
    )
