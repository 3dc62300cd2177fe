import statistics
import time

from eventflow.models import Consumer, Topic
from eventflow.monitor import Monitor

PREFIXES = ["cart", "orders", "billing", "search", "users", "fraud", "ship", "mail"]

def build(n):
    topics = Topic.objects.bulk_create([Topic(name=f"{PREFIXES[i % 8]}.t{i:04d}") for i in range(n)])
    cons = Consumer.objects.bulk_create([Consumer(name=f"{PREFIXES[i % 8]}.c{i:04d}", handler="tests.handlers.billing") for i in range(n)])
    Through = Consumer.topics.through
    Through.objects.bulk_create([Through(consumer_id=c.id, topic_id=t.id) for c, t in zip(cons, topics)])
    return topics, cons

def test_measure(operator, transactional_db):
    build(1000)
    m = Monitor(flow_refresh=0.0)
    t0 = time.perf_counter(); m.step(); print("tick ms", (time.perf_counter()-t0)*1000)
    m.step()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        r = operator.get("/")
        times.append((time.perf_counter() - t0) * 1000)
    print("overview ms", [round(t) for t in times], "median", statistics.median(times), "bytes", len(r.content))
    for path in ["/topics/", "/consumers/?sort=-lag", "/?focus=topic:cart.t0000", "/search/?q=cart.t09"]:
        times = []
        for _ in range(5):
            t0 = time.perf_counter(); r = operator.get(path); times.append((time.perf_counter() - t0) * 1000)
        print(path, "median ms", round(statistics.median(times),1), "bytes", len(r.content), r.status_code)
    open("/tmp/dscale/overview.html","wb").write(operator.get("/").content)
