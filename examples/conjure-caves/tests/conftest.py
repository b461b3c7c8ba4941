"""Load Conjure's pytest plugin (fixtures conjure_engine, check_generator) unless its entry point did."""
import engine.testing


def pytest_configure(config):
    if not config.pluginmanager.is_registered(engine.testing):
        config.pluginmanager.register(engine.testing, "conjure-testing")
