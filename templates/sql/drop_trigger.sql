DROP TRIGGER IF EXISTS {{ trigger | ident }} ON {{ table | ident }};
DROP FUNCTION IF EXISTS {{ function | ident }}();
