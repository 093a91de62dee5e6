"""Contract suites that every store and scheduler passes.

A plugin's tests subclass the suite for its interface and provide a fixture
for the implementation under test; see the plugin author guide.

* :class:`psyrun.testing.scheduler.SchedulerContract`
* :class:`psyrun.testing.store.StoreContract`

This package imports pytest; it is meant for test suites only.
"""
