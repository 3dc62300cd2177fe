"""The benchmark behind ``manage.py benchmark`` (see ``runner``).

Kept free of imports so that ``python -m dashboard.bench.limits`` runs a raw
reference program without setting Django up.
"""
