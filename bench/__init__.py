"""The benchmark (`python bench/run.py`): real gunicorn, Celery, PostgreSQL and Redis.

Not part of the product: its baseline views are mounted only when SMSGATE_BENCH_VIEWS=true.
"""
