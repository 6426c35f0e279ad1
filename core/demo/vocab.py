"""Vocabularies of the demo shop: a gift/home/fashion retailer's category tree, brands and words.

Each leaf category has a list of product nouns and a typical (median) price in pounds; item
prices are log-normal around that median, shifted by the brand's tier.
"""

from __future__ import annotations

# family -> subcategory -> leaf -> (nouns, median price)
CATEGORY_TREE: dict[str, dict[str, dict[str, tuple[list[str], float]]]] = {
    "Home": {
        "Candles": {
            "Tea lights": (["Tea Light Holder", "Tea Light Lantern", "Votive Holder"], 4.5),
            "Scented candles": (["Scented Candle", "Candle Jar", "Reed Diffuser"], 14.0),
            "Candle holders": (["Candlestick", "Pillar Candle Holder", "Hurricane Lamp"], 12.0),
        },
        "Decor": {
            "Cushions": (["Cushion Cover", "Scatter Cushion", "Bolster Cushion"], 18.0),
            "Wall art": (["Wall Sign", "Framed Print", "Hanging Heart", "Wall Clock"], 16.0),
            "Vases": (["Vase", "Bud Vase", "Flower Jug"], 15.0),
        },
        "Storage": {
            "Baskets": (["Storage Basket", "Wicker Basket", "Log Basket"], 22.0),
            "Boxes": (["Trinket Box", "Storage Tin", "Keepsake Box"], 9.0),
        },
    },
    "Kitchen": {
        "Tableware": {
            "Mugs": (["Mug", "Teacup and Saucer", "Espresso Cup Set"], 8.0),
            "Plates": (["Side Plate", "Cake Stand", "Serving Platter"], 14.0),
            "Bowls": (["Cereal Bowl", "Nesting Bowl Set", "Salad Bowl"], 12.0),
        },
        "Baking": {
            "Bakeware": (["Cake Tin", "Baking Cups", "Cookie Cutter Set", "Loaf Tin"], 9.0),
            "Utensils": (["Wooden Spoon Set", "Measuring Spoons", "Rolling Pin", "Whisk"], 7.0),
        },
        "Kitchen textiles": {
            "Tea towels": (["Tea Towel", "Tea Towel Set"], 6.0),
            "Aprons": (["Apron", "Oven Glove", "Double Oven Glove"], 12.0),
        },
        "Kitchen storage": {
            "Jars": (["Storage Jar", "Kilner Jar", "Spice Rack"], 10.0),
            "Lunch": (["Lunch Box", "Lunch Bag", "Water Bottle"], 11.0),
        },
    },
    "Garden": {
        "Outdoor living": {
            "Lanterns": (["Garden Lantern", "Solar Light", "Festoon Lights"], 19.0),
            "Furniture": (["Bistro Chair", "Garden Bench", "Folding Table"], 85.0),
        },
        "Planting": {
            "Pots": (["Plant Pot", "Planter", "Hanging Planter"], 13.0),
            "Tools": (["Trowel", "Watering Can", "Gardening Gloves", "Kneeler"], 11.0),
        },
        "Wildlife": {
            "Bird care": (["Bird Feeder", "Bird House", "Bird Bath"], 17.0),
        },
    },
    "Fashion": {
        "Bags": {
            "Totes": (["Tote Bag", "Shopper Bag", "Beach Bag"], 15.0),
            "Purses": (["Purse", "Coin Purse", "Card Holder"], 14.0),
        },
        "Accessories": {
            "Scarves": (["Scarf", "Snood", "Pashmina"], 16.0),
            "Jewellery": (["Necklace", "Bracelet", "Earrings", "Brooch"], 18.0),
            "Hair": (["Hair Clip Set", "Hair Band", "Scrunchie Set"], 6.0),
        },
        "Nightwear": {
            "Slippers": (["Slippers", "Slipper Boots"], 20.0),
            "Pyjamas": (["Pyjama Set", "Dressing Gown"], 32.0),
        },
    },
    "Gifts": {
        "Stationery": {
            "Notebooks": (["Notebook", "Journal", "Planner"], 9.0),
            "Cards": (["Greeting Card", "Birthday Card Set", "Notecard Set"], 3.5),
            "Gift wrap": (["Wrapping Paper", "Gift Bag", "Gift Tag Set", "Ribbon Reel"], 3.0),
        },
        "Toys and games": {
            "Games": (["Card Game", "Jigsaw Puzzle", "Dominoes Set"], 14.0),
            "Soft toys": (["Soft Toy", "Rag Doll", "Knitted Bunny"], 16.0),
        },
        "Pamper": {
            "Bath": (["Bath Bomb Set", "Soap Gift Set", "Hand Cream Trio"], 12.0),
            "Hampers": (["Gift Hamper", "Hot Chocolate Set", "Tea Gift Box"], 28.0),
        },
    },
    "Christmas": {
        "Decorations": {
            "Baubles": (["Bauble Set", "Glass Bauble", "Hanging Decoration"], 7.0),
            "Garlands": (["Garland", "Wreath", "Door Hanger"], 18.0),
            "Lights": (["Fairy Lights", "Light Up Star", "LED Village"], 15.0),
        },
        "Christmas table": {
            "Crackers": (["Christmas Cracker Set", "Luxury Cracker Box"], 14.0),
            "Table linen": (["Christmas Napkins", "Table Runner", "Placemat Set"], 10.0),
        },
        "Stockings": {
            "Stockings": (["Stocking", "Advent Calendar", "Sack"], 16.0),
        },
    },
}

FAMILIES = list(CATEGORY_TREE)

STYLES = [
    "Vintage", "Rustic", "Scandi", "Retro", "Botanical", "Nordic", "Boho", "Classic", "Modern",
    "Cottage", "French", "Art Deco", "Handmade", "Farmhouse", "Coastal", "Regency", "Woodland",
]
MATERIALS = [
    "Enamel", "Ceramic", "Glass", "Wooden", "Linen", "Cotton", "Velvet", "Rattan", "Zinc",
    "Copper", "Brass", "Porcelain", "Stoneware", "Wool", "Bamboo", "Recycled", "Tin", "Jute",
]
MOTIFS = [
    "Heart", "Star", "Floral", "Polka Dot", "Gingham", "Bee", "Bird", "Rose", "Strawberry",
    "Lemon", "Owl", "Fox", "Paisley", "Daisy", "Leaf", "Stripe", "Hare", "Moon",
]
CHRISTMAS_MOTIFS = [
    "Reindeer", "Snowflake", "Robin", "Holly", "Santa", "Gingerbread", "Star", "Nutcracker",
    "Penguin", "Mistletoe", "Angel", "Snowman",
]
COLOURS = [
    "Ivory", "Sage Green", "Dusky Pink", "Navy", "Mustard", "Red", "Cream", "Grey", "Teal",
    "Gold", "Silver", "Blush", "Charcoal", "Duck Egg Blue",
]

FAMILY_USES = {
    "Home": [
        "Brings a warm glow to a mantelpiece or windowsill.",
        "A finishing touch for a living room or bedroom.",
        "Makes any shelf feel cosy and lived-in.",
    ],
    "Kitchen": [
        "Made for everyday cooking, baking and long weekend breakfasts.",
        "Dishwasher safe and built for a busy family kitchen.",
        "A favourite with home bakers and tea lovers alike.",
    ],
    "Garden": [
        "Weather resistant, for patios, balconies and borders.",
        "Perfect for long summer evenings outdoors.",
        "Helps the garden and its visitors thrive.",
    ],
    "Fashion": [
        "Easy to wear, from the school run to a night out.",
        "A little everyday luxury that goes with everything.",
        "Soft, comfortable and made to last.",
    ],
    "Gifts": [
        "A thoughtful present for birthdays, thank-yous and just-because.",
        "Arrives ready to give, wrapped in tissue.",
        "The kind of gift people keep for years.",
    ],
    "Christmas": [
        "Makes the house feel like Christmas from the first of December.",
        "A festive favourite for the tree, the table or the front door.",
        "Brings seasonal sparkle to every room.",
    ],
}

# name, families it sells, tier (price multiplier)
BRANDS: list[tuple[str, list[str], float]] = [
    ("Willow Lane", ["Home", "Gifts"], 1.0),
    ("Maison Lumière", ["Home"], 1.9),
    ("Hearthside", ["Home", "Christmas"], 0.75),
    ("Little Wick", ["Home"], 0.85),
    ("Oak & Ember", ["Home", "Garden"], 1.4),
    ("Copper Kettle Co.", ["Kitchen"], 1.1),
    ("Crumb & Co.", ["Kitchen"], 0.8),
    ("Fieldhouse Kitchen", ["Kitchen"], 1.8),
    ("Teacup Lane", ["Kitchen", "Gifts"], 0.95),
    ("Pantry Basics", ["Kitchen"], 0.65),
    ("Bramble & Bee", ["Garden"], 1.0),
    ("Greenhouse Goods", ["Garden"], 0.75),
    ("Wild Meadow", ["Garden", "Gifts"], 1.3),
    ("Saltmarsh", ["Fashion"], 1.2),
    ("Ivy & Thread", ["Fashion"], 0.9),
    ("Kestrel London", ["Fashion"], 2.1),
    ("Penny Lane Accessories", ["Fashion"], 0.7),
    ("Paper Fox", ["Gifts"], 0.8),
    ("The Gift Room", ["Gifts"], 1.0),
    ("Button & Bow", ["Gifts", "Fashion"], 0.9),
    ("Hamper House", ["Gifts"], 1.7),
    ("Hearth & Holly", ["Christmas"], 1.0),
    ("North Pole Trading", ["Christmas"], 0.7),
    ("Winterberry", ["Christmas", "Home"], 1.5),
    ("Tinsel Town", ["Christmas"], 0.65),
]

COUNTRIES = [
    ("United Kingdom", 0.62), ("Ireland", 0.05), ("Germany", 0.06), ("France", 0.06),
    ("Netherlands", 0.04), ("Spain", 0.03), ("Belgium", 0.03), ("Sweden", 0.02),
    ("Denmark", 0.02), ("Italy", 0.03), ("United States", 0.02), ("Australia", 0.02),
]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
CHANNELS = ["organic search", "paid social", "newsletter", "marketplace", "referral", "app store"]
DEVICES = ["mobile", "desktop", "tablet"]
