"""Small grammars with ambiguities of every kind, for checks against the oracle."""

SMALL = {
    "ambiguous across intents and expressions": """
context:
  expressions:
    switchOn:
      - "[turn, switch] on (the) $thing:thing"
      - "turn on the lights"
    turnOnPolitely:
      - "turn on the $thing:thing (please)"
  slots:
    thing: [lights, fan, {value: tv, synonyms: [television, telly]}]
""",
    "slot phrase prefix of another": """
context:
  expressions:
    pick:
      - "$a:x (b) (c)"
      - "a [b c, b]"
  slots:
    a: [a, a b, {value: c, spoken: [a b c]}]
""",
    "optional stop inside a choice": """
context:
  expressions:
    say:
      - "a [b, (c)]"
      - "a (c) d"
      - "a [c, b d]"
""",
    "numbers and macros": """
context:
  macros:
    polite: ["please", "could you (please)"]
    unit: ["[second, seconds]"]
  expressions:
    timer:
      - "(@polite) timer for $pv.SingleDigitInteger:n @unit"
      - "(@polite) timer for $few:n @unit"
    floor:
      - "the $pv.SingleDigitOrdinal:floor floor"
      - "the $ord:floor floor"
  slots:
    few: {type: integer, min: 1, max: 12}
    ord: {type: ordinal, min: 1, max: 3}
""",
}
