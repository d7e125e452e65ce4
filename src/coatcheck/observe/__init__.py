"""Subscribers of :mod:`coatcheck.events` that export metrics, each optional.

* :mod:`coatcheck.observe.prometheus`: :class:`~coatcheck.observe.prometheus.PrometheusObserver`
  and the text scrape for a ``/metrics`` endpoint (``pip install 'coatcheck[prometheus]'``);
* :mod:`coatcheck.observe.otel`: :class:`~coatcheck.observe.otel.OpenTelemetryObserver`
  (``pip install 'coatcheck[otel]'`` plus the OpenTelemetry SDK and exporter of your choice).

Only these modules import ``prometheus_client`` or ``opentelemetry``; the core never does.
"""
