"""Django and Django REST framework adapters: see the modules of this package."""
