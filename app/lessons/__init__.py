"""The lesson player and the Lessons menu (computations: ``engine.lessons``)."""
