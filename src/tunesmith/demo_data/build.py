"""Build the synthetic "Nimbus & Fern" customer-support dataset used by `tunesmith demo`.

Nimbus & Fern is a fictional online outdoor-gear shop. Every fact below is invented,
so a base model cannot know it; the demo fine-tunes on train.jsonl and checks on the
held-out phrasings in test.jsonl whether the answer contains the `must_contain` strings.

Run:  python src/tunesmith/demo_data/build.py
Writes facts.jsonl, train.jsonl and test.jsonl next to this file. Pure stdlib, deterministic.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT_DIR = Path(__file__).resolve().parent

MIN_FACTS = 45
MIN_TRAIN = 320
MIN_TEST = 90
MAX_WORDS = 25

FACTS: list[dict] = [
    # ------------------------------------------------------------------ returns & orders
    {
        "id": "return_window",
        "topic": "returns",
        "answer": "Our return window is 47 days from the delivery date.",
        "must_contain": ["47 days"],
        "train_questions": [
            "How long do I have to return something?",
            "what's your return window",
            "Can I still send back an order I got last month?",
            "What is the return period at Nimbus & Fern?",
            "How many days do I get to return an item?",
            "Is there a time limit on returns?",
            "hey, how long until I can't return my order anymore?",
            "Could you tell me how long your returns policy lasts?",
        ],
        "test_questions": [
            "By when must I send back gear I don't want?",
            "What's the deadline for returning a purchase?",
        ],
    },
    {
        "id": "restocking_fee",
        "topic": "returns",
        "answer": "Used items can still be returned, but we charge a 9% restocking fee on them.",
        "must_contain": ["9%"],
        "train_questions": [
            "Can I return gear I've already used?",
            "Is there a restocking fee?",
            "what happens if I return something that's been used",
            "Do you charge anything for returning worn items?",
            "I took the tent camping once, can I still return it?",
            "What fee applies to returns of used products?",
            "How much do you deduct for used returns?",
            "Do used returns cost me anything?",
        ],
        "test_questions": [
            "I wore the boots on one hike, will returning them cost me?",
            "Is there a charge when sending back items that aren't new?",
        ],
    },
    {
        "id": "refund_time",
        "topic": "returns",
        "answer": "Refunds reach your account within 6 business days of us receiving the return.",
        "must_contain": ["6 business days"],
        "train_questions": [
            "How long does a refund take?",
            "when will I get my money back",
            "How quickly are refunds processed?",
            "I sent my return, when does the refund arrive?",
            "How long until the refund shows up on my card?",
            "What's the refund processing time?",
            "How soon after you get my return do I get refunded?",
            "Are refunds fast?",
        ],
        "test_questions": [
            "My return reached you yesterday, how long before I see the money?",
            "What is the typical wait for a refund to come through?",
        ],
    },
    {
        "id": "order_cancellation",
        "topic": "orders",
        "answer": "You can cancel an order within 75 minutes of placing it.",
        "must_contain": ["75 minutes"],
        "train_questions": [
            "Can I cancel my order?",
            "how long do I have to cancel an order",
            "Is there a cancellation window?",
            "I just ordered by mistake, can I still cancel?",
            "How soon after ordering is it too late to cancel?",
            "What is your order cancellation policy?",
            "Until when can an order be cancelled?",
            "can i undo an order i placed",
        ],
        "test_questions": [
            "I changed my mind right after checkout, how long can I call it off?",
            "What's the time limit for cancelling a purchase?",
        ],
    },
    # ------------------------------------------------------------------ shipping
    {
        "id": "free_shipping_threshold",
        "topic": "shipping",
        "answer": "Standard shipping is free on orders over $83.",
        "must_contain": ["$83"],
        "train_questions": [
            "Do you offer free shipping?",
            "how much do I need to spend for free shipping",
            "What's the minimum order for free delivery?",
            "When is shipping free?",
            "Is there a free shipping threshold?",
            "How big does my order have to be to ship for free?",
            "At what order value do I stop paying for shipping?",
            "free shipping minimum?",
        ],
        "test_questions": [
            "How much should my basket total to skip the delivery charge?",
            "Above what amount do you waive shipping costs?",
        ],
    },
    {
        "id": "standard_shipping_fee",
        "topic": "shipping",
        "answer": "Standard shipping costs $6.45 on orders below the free-shipping threshold.",
        "must_contain": ["$6.45"],
        "train_questions": [
            "How much is standard shipping?",
            "what does shipping cost",
            "What's the delivery fee for a small order?",
            "How much will I pay for regular shipping?",
            "What do you charge for standard delivery?",
            "If my order is small, how much is postage?",
            "Shipping price for a normal order?",
            "How much is the standard shipping rate?",
        ],
        "test_questions": [
            "I'm only buying a water bottle, what will delivery cost me?",
            "What's the regular postage charge?",
        ],
    },
    {
        "id": "express_shipping",
        "topic": "shipping",
        "answer": "Express shipping costs $17.90 and arrives in 2 business days.",
        "must_contain": ["$17.90"],
        "train_questions": [
            "How much is express shipping?",
            "do you have faster shipping",
            "What does express delivery cost?",
            "I need my order quickly, what are my options?",
            "Is there a priority shipping option?",
            "What's the price of expedited shipping?",
            "How much extra for fast delivery?",
            "Can I pay for quicker shipping?",
        ],
        "test_questions": [
            "My trip is next week, how much to get my gear sent urgently?",
            "What is the cost of your speedy delivery service?",
        ],
    },
    {
        "id": "standard_delivery_time",
        "topic": "shipping",
        "answer": "Standard delivery takes 5 to 8 business days.",
        "must_contain": ["5 to 8"],
        "train_questions": [
            "How long does delivery take?",
            "when will my order arrive",
            "What are your standard delivery times?",
            "How many days does regular shipping take?",
            "How long until I get my package?",
            "What's the usual shipping time?",
            "If I order today, when will it get here?",
            "How fast is standard shipping?",
        ],
        "test_questions": [
            "Roughly how many days should I expect to wait for my parcel?",
            "What's the normal transit time for orders?",
        ],
    },
    {
        "id": "international_shipping",
        "topic": "shipping",
        "answer": "We ship to 23 countries, with a flat international shipping fee of $24.50.",
        "must_contain": ["$24.50"],
        "train_questions": [
            "Do you ship internationally?",
            "how much is international shipping",
            "Can you send orders abroad?",
            "What does it cost to ship outside the US?",
            "I live in Canada, what would shipping cost?",
            "Is there an international delivery fee?",
            "What's your overseas shipping rate?",
            "Do you deliver to other countries, and for how much?",
        ],
        "test_questions": [
            "I'm ordering from Germany, what's the delivery charge?",
            "How much do you charge to send a parcel to another country?",
        ],
    },
    {
        "id": "warehouse_city",
        "topic": "company",
        "answer": "Our warehouse is in Pocatello, Idaho, and every order ships from there.",
        "must_contain": ["Pocatello"],
        "train_questions": [
            "Where is your warehouse?",
            "where do orders ship from",
            "Which city is your warehouse in?",
            "Where are your products shipped from?",
            "Where is your distribution centre located?",
            "What city does my package come from?",
            "Where do you store your inventory?",
            "Where's the Nimbus & Fern warehouse?",
        ],
        "test_questions": [
            "From which town are parcels dispatched?",
            "Where is your fulfilment site based?",
        ],
    },
    {
        "id": "gift_wrapping",
        "topic": "orders",
        "answer": "Gift wrapping costs $3.75 per item and includes a handwritten note.",
        "must_contain": ["$3.75"],
        "train_questions": [
            "Do you offer gift wrapping?",
            "how much is gift wrap",
            "Can you wrap my order as a present?",
            "What does gift wrapping cost?",
            "Is gift wrapping free?",
            "Can I add gift wrap at checkout, and what's the price?",
            "How much to have an item wrapped?",
            "I'm sending a present, can you wrap it?",
        ],
        "test_questions": [
            "What's the charge for wrapping a birthday gift?",
            "Is there a fee to have my purchase wrapped nicely?",
        ],
    },
    # ------------------------------------------------------------------ contact
    {
        "id": "support_hours",
        "topic": "contact",
        "answer": "Our support line is open from 7:40 am to 6:15 pm, Monday to Saturday.",
        "must_contain": ["7:40 am"],
        "train_questions": [
            "What are your support hours?",
            "when is customer service open",
            "What time does your phone line open?",
            "When can I call customer support?",
            "What are the opening hours of your helpline?",
            "Is your support line open on weekdays, and when?",
            "What hours can I reach someone by phone?",
            "When does support start taking calls?",
        ],
        "test_questions": [
            "How early in the morning can I ring your help desk?",
            "At what times is the customer service line staffed?",
        ],
    },
    {
        "id": "support_phone",
        "topic": "contact",
        "answer": "You can call our support line at 1-888-647-3291.",
        "must_contain": ["647-3291"],
        "train_questions": [
            "What is your phone number?",
            "how do I call you",
            "What number should I call for support?",
            "Can I get your customer service phone number?",
            "Is there a number I can ring?",
            "What's the support hotline?",
            "How can I reach you by phone?",
            "phone number for Nimbus & Fern?",
        ],
        "test_questions": [
            "I'd rather speak to a person, which number do I dial?",
            "What's the telephone contact for your help team?",
        ],
    },
    {
        "id": "support_email",
        "topic": "contact",
        "answer": "You can email our support team at trailhelp@nimbusfern.com.",
        "must_contain": ["trailhelp@nimbusfern.com"],
        "train_questions": [
            "What is your support email?",
            "how can I email you",
            "What email address do I contact for help?",
            "Is there an email for customer service?",
            "Where do I send an email about my order?",
            "Can I contact you by email?",
            "What's the customer support email address?",
            "email for complaints?",
        ],
        "test_questions": [
            "I prefer writing rather than calling, which address should I use?",
            "To which inbox should I send my question?",
        ],
    },
    # ------------------------------------------------------------------ company
    {
        "id": "founding_year",
        "topic": "company",
        "answer": "Nimbus & Fern was founded in 2013.",
        "must_contain": ["2013"],
        "train_questions": [
            "When was Nimbus & Fern founded?",
            "how old is your company",
            "What year did the store start?",
            "When did Nimbus & Fern open?",
            "How long have you been in business?",
            "In which year was the company established?",
            "When was the shop started?",
            "What's your founding year?",
        ],
        "test_questions": [
            "Since when has your business been around?",
            "What year did Nimbus & Fern begin trading?",
        ],
    },
    {
        "id": "ceo_name",
        "topic": "company",
        "answer": "Our CEO is Marisol Vantreight.",
        "must_contain": ["Vantreight"],
        "train_questions": [
            "Who is the CEO of Nimbus & Fern?",
            "who runs the company",
            "What's the name of your chief executive?",
            "Who is in charge of Nimbus & Fern?",
            "Who leads your company?",
            "Can you tell me who your CEO is?",
            "Who's the boss at Nimbus & Fern?",
            "Who heads the business?",
        ],
        "test_questions": [
            "Who sits at the top of your organisation?",
            "What is the name of the person running Nimbus & Fern?",
        ],
    },
    {
        "id": "trail_donation",
        "topic": "company",
        "answer": "We donate 2.7% of every order to trail maintenance projects.",
        "must_contain": ["2.7%"],
        "train_questions": [
            "Do you donate to charity?",
            "how much of my order goes to charity",
            "Do you support trail maintenance?",
            "What percentage of sales do you give away?",
            "Does Nimbus & Fern give back to the outdoors?",
            "Is part of each purchase donated?",
            "What share of my order funds trail work?",
            "do you give money to conservation",
        ],
        "test_questions": [
            "How much of what I spend helps look after hiking paths?",
            "What cut of each sale goes to good causes?",
        ],
    },
    # ------------------------------------------------------------------ loyalty & discounts
    {
        "id": "loyalty_name",
        "topic": "loyalty",
        "answer": "Our loyalty programme is called Trail Ledger.",
        "must_contain": ["Trail Ledger"],
        "train_questions": [
            "Do you have a loyalty programme?",
            "what's your rewards program called",
            "What is the name of your loyalty scheme?",
            "Is there a rewards club I can join?",
            "How do I earn rewards when I shop?",
            "Do you have a points program?",
            "What's the loyalty club called?",
            "Can I join a membership scheme for regular customers?",
        ],
        "test_questions": [
            "I shop here a lot, is there some kind of points club?",
            "What do you call your customer rewards scheme?",
        ],
    },
    {
        "id": "loyalty_points_rate",
        "topic": "loyalty",
        "answer": "Trail Ledger members earn 7 points for every dollar spent.",
        "must_contain": ["7 points"],
        "train_questions": [
            "How many points do I earn per dollar?",
            "how fast do I earn loyalty points",
            "What's the points rate for Trail Ledger?",
            "How many reward points do I get when I spend money?",
            "What is the earning rate in your loyalty programme?",
            "If I spend a dollar, how many points is that?",
            "How do points accumulate in Trail Ledger?",
            "points per dollar?",
        ],
        "test_questions": [
            "For each dollar I pay, how many rewards do I collect?",
            "What rate do Trail Ledger members earn at?",
        ],
    },
    {
        "id": "loyalty_redemption",
        "topic": "loyalty",
        "answer": "Every 400 points in Trail Ledger can be redeemed for a $5 voucher.",
        "must_contain": ["400 points"],
        "train_questions": [
            "How do I redeem my loyalty points?",
            "what are my points worth",
            "How many points do I need for a voucher?",
            "When can I cash in my Trail Ledger points?",
            "What can I get with my reward points?",
            "How much are Trail Ledger points worth?",
            "How do I turn points into a discount?",
            "What's the redemption rate for points?",
        ],
        "test_questions": [
            "How many points must I collect before I can spend them?",
            "What's the conversion from points to money off?",
        ],
    },
    {
        "id": "student_discount",
        "topic": "discounts",
        "answer": "Students get 13% off with a verified student email address.",
        "must_contain": ["13%"],
        "train_questions": [
            "Do you have a student discount?",
            "how much off do students get",
            "Is there a discount for university students?",
            "I'm a student, can I get money off?",
            "What is the student discount percentage?",
            "Do college students get a deal?",
            "How does the student discount work?",
            "student discount?",
        ],
        "test_questions": [
            "I'm at uni, is there any reduction for me?",
            "What percentage do you take off for people in full-time education?",
        ],
    },
    {
        "id": "veteran_discount",
        "topic": "discounts",
        "answer": "Veterans and first responders get 16% off every order.",
        "must_contain": ["16%"],
        "train_questions": [
            "Do you offer a military discount?",
            "is there a discount for veterans",
            "Do first responders get money off?",
            "I'm a firefighter, do you have a discount?",
            "What discount do veterans get?",
            "Is there a deal for service members?",
            "How much off for nurses and paramedics?",
            "do you have a first responder discount",
        ],
        "test_questions": [
            "I served in the army, can I get a reduced price?",
            "Is there a percentage off for emergency workers?",
        ],
    },
    {
        "id": "welcome_code",
        "topic": "discounts",
        "answer": "New customers get 14% off their first order with the code SPROUT14.",
        "must_contain": ["SPROUT14"],
        "train_questions": [
            "Do you have a discount code for new customers?",
            "is there a first order discount",
            "What's the welcome code?",
            "I'm new here, is there a promo code?",
            "Can I get money off my first purchase?",
            "What coupon code can a first-time buyer use?",
            "Any discount code for my first order?",
            "What promo code do new shoppers get?",
        ],
        "test_questions": [
            "This is my first time ordering, which code should I enter?",
            "Is there a voucher for people who haven't bought before?",
        ],
    },
    {
        "id": "autumn_code",
        "topic": "discounts",
        "answer": "The autumn sale code is EMBERLEAF, which takes 18% off outerwear.",
        "must_contain": ["EMBERLEAF"],
        "train_questions": [
            "What is the autumn sale code?",
            "any discount codes for fall",
            "Is there a seasonal promo code right now?",
            "What code do I use for the fall sale?",
            "Do you have a coupon for jackets this autumn?",
            "What's the current seasonal discount code?",
            "How do I get the autumn discount?",
            "fall promo code?",
        ],
        "test_questions": [
            "Which coupon works during the October sale?",
            "Is there a code to save on outerwear this season?",
        ],
    },
    {
        "id": "newsletter_voucher",
        "topic": "discounts",
        "answer": "Signing up to our newsletter gives you a $9 voucher.",
        "must_contain": ["$9"],
        "train_questions": [
            "Do I get anything for joining the newsletter?",
            "what do I get if I sign up for emails",
            "Is there a reward for subscribing to your newsletter?",
            "Why should I sign up to your mailing list?",
            "Does the newsletter come with a discount?",
            "What's the newsletter signup bonus?",
            "Do subscribers get money off?",
            "newsletter perk?",
        ],
        "test_questions": [
            "If I subscribe to your emails, is there a welcome gift?",
            "What bonus comes with joining the mailing list?",
        ],
    },
    {
        "id": "price_match",
        "topic": "pricing",
        "answer": "We match a competitor's lower price within 11 days of your purchase.",
        "must_contain": ["11 days"],
        "train_questions": [
            "Do you price match?",
            "what's your price match policy",
            "I found it cheaper elsewhere, will you match it?",
            "How long after buying can I ask for a price match?",
            "Do you match competitor prices?",
            "Can I get the difference back if another shop is cheaper?",
            "Is there a deadline for price matching?",
            "price match window?",
        ],
        "test_questions": [
            "I bought a tent and then saw it for less at another retailer, can you help?",
            "How long is your price-matching guarantee valid?",
        ],
    },
    {
        "id": "instalments",
        "topic": "payments",
        "answer": "You can split any order into 3 interest-free payments with FernSplit.",
        "must_contain": ["FernSplit"],
        "train_questions": [
            "Can I pay in instalments?",
            "do you have buy now pay later",
            "Is there a way to split my payment?",
            "Can I spread the cost of my order?",
            "Do you offer payment plans?",
            "What's your pay-later option called?",
            "Can I pay for a tent over a few months?",
            "interest-free payments?",
        ],
        "test_questions": [
            "I can't afford it all at once, can I pay in parts?",
            "Is financing available at checkout?",
        ],
    },
    # ------------------------------------------------------------------ gift cards
    {
        "id": "gift_card_validity",
        "topic": "gift cards",
        "answer": "Gift cards are valid for 39 months from the date of purchase.",
        "must_contain": ["39 months"],
        "train_questions": [
            "Do gift cards expire?",
            "how long is a gift card valid",
            "When does my gift card run out?",
            "What's the expiry on gift cards?",
            "Is there a time limit on using a gift card?",
            "How long can I keep a gift card before using it?",
            "Gift card expiration?",
            "I got a gift card last year, is it still good?",
        ],
        "test_questions": [
            "Until when can a gift certificate be spent?",
            "What's the shelf life of a Nimbus & Fern gift card?",
        ],
    },
    {
        "id": "gift_card_amounts",
        "topic": "gift cards",
        "answer": "Gift cards can be bought for any amount between $15 and $365.",
        "must_contain": ["$365"],
        "train_questions": [
            "What amounts do gift cards come in?",
            "what's the maximum gift card value",
            "How much can I put on a gift card?",
            "What's the largest gift card I can buy?",
            "Are there limits on gift card amounts?",
            "Can I choose the value of a gift card?",
            "What is the gift card range?",
            "How big a gift card can I get?",
        ],
        "test_questions": [
            "What's the most I can load onto one gift certificate?",
            "Is there a cap on how much a gift card can hold?",
        ],
    },
    # ------------------------------------------------------------------ warranty, repair, rental, trade-in
    {
        "id": "warranty_length",
        "topic": "warranty",
        "answer": "Our warranty covers manufacturing defects for 26 months.",
        "must_contain": ["26 months"],
        "train_questions": [
            "How long is your warranty?",
            "what's the warranty on your gear",
            "How long are products guaranteed for?",
            "Is there a warranty, and for how long?",
            "What does your warranty period cover?",
            "How long do I have to claim a defect?",
            "warranty length?",
            "My jacket broke after a year, is it still under warranty?",
        ],
        "test_questions": [
            "For how long are your items protected against faults?",
            "What's the guarantee period on things I buy from you?",
        ],
    },
    {
        "id": "repair_service_name",
        "topic": "repairs",
        "answer": "Our repair service is called the Mend Hut.",
        "must_contain": ["Mend Hut"],
        "train_questions": [
            "Do you repair gear?",
            "what's your repair service called",
            "Can you fix my torn jacket?",
            "Do you offer repairs?",
            "Where can I get my tent fixed?",
            "Is there a repair service?",
            "My backpack strap snapped, can you mend it?",
            "What's the name of your repair shop?",
        ],
        "test_questions": [
            "Who should I send broken equipment to for fixing?",
            "Does Nimbus & Fern have a workshop for damaged items?",
        ],
    },
    {
        "id": "repair_cost",
        "topic": "repairs",
        "answer": "A standard Mend Hut repair costs a flat $27.50, plus return postage.",
        "must_contain": ["$27.50"],
        "train_questions": [
            "How much does a repair cost?",
            "what do repairs cost",
            "What's the price of a Mend Hut repair?",
            "How much to fix a broken zip?",
            "Are repairs expensive?",
            "What do you charge to mend gear?",
            "Is there a flat fee for repairs?",
            "how much is a mend hut repair",
        ],
        "test_questions": [
            "What will it cost me to get my jacket patched?",
            "What's the fee for fixing damaged equipment?",
        ],
    },
    {
        "id": "rental_name",
        "topic": "rentals",
        "answer": "Our rental programme is called Gear Library.",
        "must_contain": ["Gear Library"],
        "train_questions": [
            "Can I rent gear?",
            "do you do rentals",
            "What's your rental programme called?",
            "Is there a way to borrow a tent instead of buying?",
            "Do you have a gear hire service?",
            "Can I hire equipment for a weekend?",
            "What's the name of your rental scheme?",
            "Do you lend out camping gear?",
        ],
        "test_questions": [
            "I only need a stove for one trip, can I hire one?",
            "What's the service for renting equipment called?",
        ],
    },
    {
        "id": "rental_price",
        "topic": "rentals",
        "answer": "Tent rentals through Gear Library cost $11 per night.",
        "must_contain": ["$11 per night"],
        "train_questions": [
            "How much does it cost to rent a tent?",
            "tent rental price",
            "What's the nightly rate for renting a tent?",
            "How much is a tent from Gear Library?",
            "What do tent rentals cost?",
            "How much to hire a tent for a night?",
            "Is renting a tent expensive?",
            "What are your tent hire prices?",
        ],
        "test_questions": [
            "I want to borrow a tent for three nights, what's the daily charge?",
            "How much per night is a rental shelter?",
        ],
    },
    {
        "id": "trade_in",
        "topic": "trade-in",
        "answer": "Our trade-in programme, Second Summit, gives store credit for your used gear.",
        "must_contain": ["Second Summit"],
        "train_questions": [
            "Do you have a trade-in programme?",
            "can I trade in my old gear",
            "What's your trade-in scheme called?",
            "Can I sell my used tent back to you?",
            "Do you buy back old equipment?",
            "Is there a way to get credit for used gear?",
            "What happens to gear I trade in?",
            "trade in program name?",
        ],
        "test_questions": [
            "I've got an old backpack I don't use, can I swap it for credit?",
            "Do you run a scheme for exchanging second-hand kit?",
        ],
    },
    # ------------------------------------------------------------------ products: packs
    {
        "id": "zephyr28_weight",
        "topic": "products",
        "answer": "The Zephyr 28 backpack weighs 940 grams.",
        "must_contain": ["940 grams"],
        "train_questions": [
            "How much does the Zephyr 28 weigh?",
            "zephyr 28 weight",
            "What's the weight of the Zephyr 28 backpack?",
            "Is the Zephyr 28 heavy?",
            "How heavy is the Zephyr 28 pack?",
            "Can you tell me the Zephyr 28's weight?",
            "What does the Zephyr 28 daypack weigh empty?",
            "How light is the Zephyr 28?",
        ],
        "test_questions": [
            "I'm counting grams, what does your Zephyr 28 come in at?",
            "What's the empty mass of the Zephyr 28?",
        ],
    },
    {
        "id": "zephyr28_price",
        "topic": "products",
        "answer": "The Zephyr 28 backpack costs $139.",
        "must_contain": ["$139"],
        "train_questions": [
            "How much is the Zephyr 28?",
            "zephyr 28 price",
            "What does the Zephyr 28 backpack cost?",
            "What's the price of the Zephyr 28?",
            "How expensive is the Zephyr 28 pack?",
            "How much would a Zephyr 28 set me back?",
            "What do you charge for the Zephyr 28?",
            "Zephyr 28 cost?",
        ],
        "test_questions": [
            "I'd like to buy a Zephyr 28, how much will that be?",
            "What's the retail price on the Zephyr 28 daypack?",
        ],
    },
    {
        "id": "tamarack65_load",
        "topic": "products",
        "answer": "The Tamarack 65 pack has a maximum load of 19 kilograms.",
        "must_contain": ["19 kilograms"],
        "train_questions": [
            "What's the load limit of the Tamarack 65?",
            "how much can the tamarack 65 carry",
            "What is the maximum load for the Tamarack 65?",
            "How much weight can I put in the Tamarack 65?",
            "Can the Tamarack 65 handle a heavy load?",
            "Tamarack 65 max weight?",
            "What's the carrying capacity of the Tamarack 65 in weight?",
            "How heavy a load is the Tamarack 65 rated for?",
        ],
        "test_questions": [
            "What's the most I should pack into a Tamarack 65?",
            "Up to what weight is the Tamarack 65 designed to carry?",
        ],
    },
    # ------------------------------------------------------------------ products: tents
    {
        "id": "cirrus2_weight",
        "topic": "products",
        "answer": "The Cirrus 2 tent weighs 1.64 kilograms.",
        "must_contain": ["1.64 kilograms"],
        "train_questions": [
            "How much does the Cirrus 2 weigh?",
            "cirrus 2 tent weight",
            "What's the weight of the Cirrus 2?",
            "Is the Cirrus 2 tent light?",
            "How heavy is the Cirrus 2?",
            "What does the Cirrus 2 two-person tent weigh?",
            "Can you tell me the packed weight of the Cirrus 2?",
            "Cirrus 2 weight?",
        ],
        "test_questions": [
            "Would the Cirrus 2 be light enough for backpacking, what does it weigh?",
            "What's the total mass of the Cirrus 2 shelter?",
        ],
    },
    {
        "id": "cirrus2_price",
        "topic": "products",
        "answer": "The Cirrus 2 tent costs $389.",
        "must_contain": ["$389"],
        "train_questions": [
            "How much is the Cirrus 2 tent?",
            "cirrus 2 price",
            "What does the Cirrus 2 cost?",
            "What's the price of the Cirrus 2?",
            "How expensive is the Cirrus 2 tent?",
            "How much do you sell the Cirrus 2 for?",
            "Cirrus 2 cost?",
            "What would a Cirrus 2 set me back?",
        ],
        "test_questions": [
            "I'm thinking of getting the Cirrus 2, what's it going to cost?",
            "What's the sticker price of your Cirrus 2 shelter?",
        ],
    },
    {
        "id": "stratus4_waterproof",
        "topic": "products",
        "answer": "The Stratus 4 tent has a waterproof rating of 3700 mm.",
        "must_contain": ["3700 mm"],
        "train_questions": [
            "How waterproof is the Stratus 4?",
            "stratus 4 waterproof rating",
            "What's the hydrostatic head of the Stratus 4 tent?",
            "Will the Stratus 4 keep me dry in heavy rain?",
            "What's the waterproofing on the Stratus 4?",
            "How much rain can the Stratus 4 handle?",
            "Stratus 4 hydrostatic head?",
            "Is the Stratus 4 tent waterproof enough for storms?",
        ],
        "test_questions": [
            "What water column rating does your Stratus 4 have?",
            "Is the Stratus 4 good in a downpour, what's its rating?",
        ],
    },
    # ------------------------------------------------------------------ products: clothing & footwear
    {
        "id": "halden_fabric",
        "topic": "products",
        "answer": "The Halden jacket is made with our own WeatherLoom fabric.",
        "must_contain": ["WeatherLoom"],
        "train_questions": [
            "What fabric is the Halden jacket made of?",
            "halden jacket material",
            "What's the Halden jacket made from?",
            "Which material does the Halden use?",
            "Is the Halden jacket Gore-Tex?",
            "What membrane is in the Halden jacket?",
            "What's the shell fabric on the Halden?",
            "Tell me about the Halden jacket's fabric.",
        ],
        "test_questions": [
            "Which textile keeps the Halden rain shell waterproof?",
            "What cloth is used for the Halden coat?",
        ],
    },
    {
        "id": "halden_price",
        "topic": "products",
        "answer": "The Halden jacket costs $247.",
        "must_contain": ["$247"],
        "train_questions": [
            "How much is the Halden jacket?",
            "halden jacket price",
            "What does the Halden cost?",
            "What's the price of the Halden rain jacket?",
            "How expensive is the Halden?",
            "How much do you charge for the Halden jacket?",
            "Halden cost?",
            "What would the Halden jacket set me back?",
        ],
        "test_questions": [
            "I want the Halden in green, how much will it be?",
            "What's the retail price on the Halden shell?",
        ],
    },
    {
        "id": "corrie_fill",
        "topic": "products",
        "answer": "The Corrie down jacket uses 730 fill power goose down.",
        "must_contain": ["730 fill"],
        "train_questions": [
            "What fill power is the Corrie jacket?",
            "corrie down fill power",
            "What down is in the Corrie jacket?",
            "How warm is the Corrie's insulation?",
            "What's the Corrie puffer filled with?",
            "What's the down rating on the Corrie?",
            "Tell me about the Corrie jacket's insulation.",
            "Corrie fill power?",
        ],
        "test_questions": [
            "How lofty is the down inside your Corrie puffy?",
            "What insulation quality does the Corrie coat have?",
        ],
    },
    {
        "id": "ridgeback_outsole",
        "topic": "products",
        "answer": "The Ridgeback boots use our Gripset outsole.",
        "must_contain": ["Gripset"],
        "train_questions": [
            "What sole do the Ridgeback boots have?",
            "ridgeback boot outsole",
            "Are the Ridgeback boots Vibram?",
            "What's on the bottom of the Ridgeback boots?",
            "What outsole do Ridgebacks use?",
            "How grippy are the Ridgeback hiking boots?",
            "Which tread do the Ridgeback boots use?",
            "Ridgeback sole?",
        ],
        "test_questions": [
            "What rubber is under the Ridgeback hikers?",
            "Which grip technology is on the Ridgeback footwear?",
        ],
    },
    # ------------------------------------------------------------------ products: cooking, sleep, accessories
    {
        "id": "lightest_stove",
        "topic": "products",
        "answer": "Our lightest stove is the Ember Mini, which weighs 86 grams.",
        "must_contain": ["Ember Mini"],
        "train_questions": [
            "What's your lightest stove?",
            "lightest camping stove you sell",
            "Which stove is best for ultralight trips?",
            "Do you have a small backpacking stove?",
            "What stove would you recommend for saving weight?",
            "Which is the most compact stove you stock?",
            "What's your smallest stove model?",
            "I need a tiny stove, which one?",
        ],
        "test_questions": [
            "Which cooker should a gram-counting hiker buy from you?",
            "What's the name of your featherweight burner?",
        ],
    },
    {
        "id": "ember_mini_boil",
        "topic": "products",
        "answer": "The Ember Mini boils one litre of water in 219 seconds.",
        "must_contain": ["219 seconds"],
        "train_questions": [
            "How fast does the Ember Mini boil water?",
            "ember mini boil time",
            "What's the boil time of the Ember Mini?",
            "How long does the Ember Mini take to boil a litre?",
            "Is the Ember Mini quick to boil?",
            "How quickly can the Ember Mini heat water?",
            "Ember Mini boiling speed?",
            "How long to boil water on an Ember Mini?",
        ],
        "test_questions": [
            "How long until my water's ready on the Ember Mini?",
            "What's the time to a rolling boil with your Ember Mini?",
        ],
    },
    {
        "id": "loam_rating",
        "topic": "products",
        "answer": "The Loam sleeping bag is comfort-rated to minus 7 degrees Celsius.",
        "must_contain": ["minus 7"],
        "train_questions": [
            "What is the temperature rating of the Loam sleeping bag?",
            "loam bag temp rating",
            "How warm is the Loam sleeping bag?",
            "How cold can I go in the Loam bag?",
            "What's the comfort rating of the Loam?",
            "Is the Loam sleeping bag good for winter?",
            "Loam comfort temperature?",
            "What temperature is the Loam bag rated for?",
        ],
        "test_questions": [
            "Down to what temperature will the Loam keep me cosy?",
            "What's the lowest comfortable temperature for your Loam bag?",
        ],
    },
    {
        "id": "drift_pad_rvalue",
        "topic": "products",
        "answer": "The Drift sleeping pad has an R-value of 4.3.",
        "must_contain": ["4.3"],
        "train_questions": [
            "What is the R-value of the Drift pad?",
            "drift pad r value",
            "How warm is the Drift sleeping pad?",
            "How insulated is the Drift mat?",
            "What's the Drift pad's insulation rating?",
            "Is the Drift pad warm enough for cold ground?",
            "Drift R-value?",
            "Tell me the R-value of your Drift sleeping mat.",
        ],
        "test_questions": [
            "How well does the Drift mattress block the cold from below?",
            "What thermal rating does the Drift pad carry?",
        ],
    },
    {
        "id": "kestrel_poles_weight",
        "topic": "products",
        "answer": "The Kestrel trekking poles weigh 412 grams per pair.",
        "must_contain": ["412 grams"],
        "train_questions": [
            "How much do the Kestrel poles weigh?",
            "kestrel trekking pole weight",
            "What's the weight of the Kestrel trekking poles?",
            "Are the Kestrel poles light?",
            "How heavy are the Kestrel poles?",
            "What does a pair of Kestrel poles weigh?",
            "Kestrel poles weight?",
            "Can you tell me how heavy the Kestrel trekking poles are?",
        ],
        "test_questions": [
            "What's the combined mass of both Kestrel walking sticks?",
            "How light is your Kestrel hiking pole set?",
        ],
    },
    {
        "id": "rill_filter_capacity",
        "topic": "products",
        "answer": "The Rill water filter is rated for 1900 litres before replacement.",
        "must_contain": ["1900 litres"],
        "train_questions": [
            "How long does the Rill filter last?",
            "rill filter capacity",
            "How much water can the Rill filter clean?",
            "What's the lifespan of the Rill water filter?",
            "When do I need to replace the Rill filter?",
            "How many litres is the Rill rated for?",
            "Rill filter lifetime?",
            "How much water before the Rill filter wears out?",
        ],
        "test_questions": [
            "What total volume can I purify with one Rill?",
            "How much can a Rill cartridge treat in its lifetime?",
        ],
    },
    {
        "id": "glint_runtime",
        "topic": "products",
        "answer": "The Glint headlamp runs for 61 hours on its low setting.",
        "must_contain": ["61 hours"],
        "train_questions": [
            "How long does the Glint headlamp battery last?",
            "glint headlamp runtime",
            "What's the battery life of the Glint?",
            "How many hours does the Glint last on low?",
            "What's the runtime of the Glint headlamp?",
            "How long will the Glint stay on?",
            "Glint battery life?",
            "Does the Glint headlamp last a whole trip?",
        ],
        "test_questions": [
            "On the dimmest mode, how long can the Glint shine?",
            "What's the maximum burn time for your Glint head torch?",
        ],
    },
]


def normalise(text: str) -> str:
    """Lowercase, strip punctuation, collapse whitespace."""
    text = re.sub(r"[^\w\s]", " ", text.lower())
    return " ".join(text.split())


def chat(question: str, answer: str) -> list[dict]:
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]


def check(facts: list[dict]) -> None:
    ids = [f["id"] for f in facts]
    assert len(ids) == len(set(ids)), "fact ids must be unique"
    assert len(facts) >= MIN_FACTS, f"need >= {MIN_FACTS} facts, have {len(facts)}"

    train_norm: dict[str, str] = {}
    for f in facts:
        assert 1 <= len(f["must_contain"]) <= 2, f["id"]
        assert len(f["answer"].split()) <= MAX_WORDS, f["id"]
        assert 7 <= len(f["train_questions"]) <= 8, f["id"]
        assert len(f["test_questions"]) == 2, f["id"]
        for mc in f["must_contain"]:
            assert mc.lower() in f["answer"].lower(), (f["id"], mc)
            for q in f["train_questions"] + f["test_questions"]:
                assert mc.lower() not in q.lower(), (f["id"], mc, q)
        for q in f["train_questions"] + f["test_questions"]:
            assert len(q.split()) <= MAX_WORDS, (f["id"], q)
        for q in f["train_questions"]:
            n = normalise(q)
            assert n not in train_norm, f"duplicate train question {q!r} ({f['id']}, {train_norm.get(n)})"
            train_norm[n] = f["id"]

    test_norm: set[str] = set()
    for f in facts:
        for q in f["test_questions"]:
            n = normalise(q)
            assert n not in train_norm, f"test question also in train: {q!r} ({f['id']})"
            assert n not in test_norm, f"duplicate test question: {q!r} ({f['id']})"
            test_norm.add(n)

    n_train = sum(len(f["train_questions"]) for f in facts)
    n_test = sum(len(f["test_questions"]) for f in facts)
    assert n_train >= MIN_TRAIN, f"need >= {MIN_TRAIN} train rows, have {n_train}"
    assert n_test >= MIN_TEST, f"need >= {MIN_TEST} test rows, have {n_test}"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(facts: list[dict], out_dir: Path = OUT_DIR) -> tuple[int, int, int]:
    check(facts)
    rng = random.Random(0)

    fact_rows = [
        {"id": f["id"], "topic": f["topic"], "answer": f["answer"], "must_contain": f["must_contain"]}
        for f in facts
    ]
    train_rows = [
        {"messages": chat(q, f["answer"]), "fact": f["id"]}
        for f in facts
        for q in f["train_questions"]
    ]
    rng.shuffle(train_rows)  # interleave facts so training batches are mixed
    test_rows = [
        {"messages": chat(q, f["answer"]), "must_contain": f["must_contain"], "fact": f["id"]}
        for f in facts
        for q in f["test_questions"]
    ]

    write_jsonl(out_dir / "facts.jsonl", fact_rows)
    write_jsonl(out_dir / "train.jsonl", train_rows)
    write_jsonl(out_dir / "test.jsonl", test_rows)
    return len(fact_rows), len(train_rows), len(test_rows)


if __name__ == "__main__":
    n_facts, n_train, n_test = build(FACTS)
    print(f"facts: {n_facts}  train: {n_train}  test: {n_test}  -> {OUT_DIR}")
