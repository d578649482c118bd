/* no-descriptor.c — a shared object that is not a taskrun plugin (no descriptor). */
int not_a_plugin (void);
int
not_a_plugin (void)
{
  return 42;
}
